using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Training;
using TorchSharp;

namespace Equinas.Benchmarks.Data;

/// <summary>The parts of the shipped digits (train, validation, test), as in Equinas.Data.</summary>
internal enum DigitSplit
{
    Train = 0,
    Validation = 1,
    Test = 2,
}

/// <summary>
/// The shipped digits (Equinas.Data) as engine datasets: every variant (plain, rotated, moved by a subgroup) comes from
/// Equinas.Data, so that the benchmarks, the tests, the tool and the examples see the same images.
/// </summary>
internal sealed class ShippedDigits
{
    private readonly Equinas.Data.ShippedDigits _digits;

    private ShippedDigits(Equinas.Data.ShippedDigits digits)
    {
        _digits = digits;
    }

    public int Height => Equinas.Data.ShippedDigits.Size;

    public int Width => Equinas.Data.ShippedDigits.Size;

    /// <summary>
    /// The trainer's default network for these digits (10 classes, 28 x 28), as the trainer resolves its defaults: the
    /// small preset widened for the class count, written with C1 layers (a search or fixed network sets the groups).
    /// </summary>
    public NetworkSpec DefaultNetwork() => NetworkSpec.FromChannels(
        1, NetworkPresets.Uniform(SymmetryGroup.C1, 5), SearchDefaults.ChannelsFor(10), SearchDefaults.KernelSize,
        SearchDefaults.Pooling(5, Height), 10, SearchDefaults.HeadHidden);

    /// <summary>The number of digits in a split.</summary>
    public int Count(DigitSplit split) => _digits.Plain((Equinas.Data.DigitSplit)split).Count;

    public static ShippedDigits Load() => new(Equinas.Data.ShippedDigits.Load());

    /// <summary>The split as it is.</summary>
    public ImageDataset Dataset(DigitSplit split) => ToDataset(_digits.Plain((Equinas.Data.DigitSplit)split));

    /// <summary>Every digit rotated by a continuous random angle (Equinas.Data's rotated variant).</summary>
    public ImageDataset Rotated(DigitSplit split, int seed) => ToDataset(_digits.Rotated((Equinas.Data.DigitSplit)split, seed));

    /// <summary>Every digit moved by a random element of <paramref name="group"/> (Equinas.Data's augmented variant).</summary>
    public ImageDataset Augmented(DigitSplit split, SymmetryGroup group, int seed) => ToDataset(_digits.Augmented((Equinas.Data.DigitSplit)split, group.Name, seed));

    private ImageDataset ToDataset(IReadOnlyList<Equinas.Data.DigitImage> digits)
    {
        var pixels = digits.SelectMany(d => d.Pixels).ToArray();
        var labels = digits.Select(d => (long)d.Label).ToArray();
        return new ImageDataset(torch.tensor(pixels, [digits.Count, 1, Height, Width]), torch.tensor(labels), 10);
    }
}
