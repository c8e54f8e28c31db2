using Equinas.Data;
using SkiaSharp;
using Xunit;

namespace Equinas.Data.Tests;

public sealed class ShippedDigitsTests
{
    private static readonly ShippedDigits Digits = ShippedDigits.Load();

    [Fact]
    public void The_embedded_digits_have_the_documented_split()
    {
        Assert.Equal(10_000, Digits.Count);
        Assert.Equal(6_004, Digits.Plain(DigitSplit.Train).Count);
        Assert.Equal(2_000, Digits.Plain(DigitSplit.Validation).Count);
        Assert.Equal(1_996, Digits.Plain(DigitSplit.Test).Count);
        Assert.Equal(Enumerable.Range(0, 10), Digits.Plain(DigitSplit.Test).Select(d => d.Label).Distinct().Order());
    }

    [Fact]
    public void Augmenting_by_C1_changes_nothing_and_by_D4_only_permutes_pixels()
    {
        var plain = Digits.Plain(DigitSplit.Validation);
        var same = Digits.Augmented(DigitSplit.Validation, "C1", seed: 5);
        Assert.All(plain.Zip(same), p => Assert.Equal(p.First.Pixels, p.Second.Pixels));

        var moved = Digits.Augmented(DigitSplit.Validation, "D4", seed: 5);
        Assert.All(plain.Zip(moved), p => Assert.Equal(p.First.Pixels.Order(), p.Second.Pixels.Order()));
        Assert.Contains(plain.Zip(moved), p => !p.First.Pixels.SequenceEqual(p.Second.Pixels));
        Assert.Equal(moved.Select(d => d.Pixels), Digits.Augmented(DigitSplit.Validation, "D4", seed: 5).Select(d => d.Pixels));
    }

    [Fact]
    public void Rotation_is_seeded_and_a_zero_turn_of_the_centre_is_kept()
    {
        var a = Digits.Rotated(DigitSplit.Test, seed: 3);
        var b = Digits.Rotated(DigitSplit.Test, seed: 3);
        var c = Digits.Rotated(DigitSplit.Test, seed: 4);
        Assert.Equal(a.Select(d => d.Pixels), b.Select(d => d.Pixels));
        Assert.NotEqual(a[0].Pixels, c[0].Pixels);
        var plain = Digits.Plain(DigitSplit.Test);

        // Rotation keeps the ink roughly (bilinear resampling, digits sit away from the border).
        for (int i = 0; i < 50; i++)
        {
            double before = plain[i].Pixels.Sum(), after = a[i].Pixels.Sum();
            Assert.InRange(after / before, 0.85, 1.1);
        }
    }

    [Fact]
    public void Image_folders_hold_one_png_per_digit_that_decodes_to_its_pixels()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"equinas-digits-{Guid.NewGuid():N}");
        try
        {
            var digits = Digits.Plain(DigitSplit.Test).Take(30).ToArray();
            var files = ShippedDigits.WriteImageFolder(digits, folder);
            Assert.Equal(30, files.Count);
            for (int i = 0; i < digits.Length; i++)
            {
                Assert.Equal(digits[i].Label.ToString(System.Globalization.CultureInfo.InvariantCulture), Path.GetFileName(Path.GetDirectoryName(files[i])));
                using var bitmap = SKBitmap.Decode(files[i]);
                Assert.Equal((28, 28), (bitmap.Width, bitmap.Height));
                for (int p = 0; p < 784; p++)
                {
                    Assert.Equal(Math.Round(digits[i].Pixels[p] * 255), bitmap.GetPixel(p % 28, p / 28).Red);
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
