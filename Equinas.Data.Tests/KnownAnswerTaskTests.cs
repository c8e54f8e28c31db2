using Equinas.Data;
using Equinas.MLNet.Groups;
using Xunit;

namespace Equinas.Data.Tests;

public sealed class KnownAnswerTaskTests
{
    public static TheoryData<string> Groups() => [.. KnownAnswerTask.NormalSubgroups];

    [Theory]
    [MemberData(nameof(Groups))]
    public void Labels_are_invariant_to_the_group_and_changed_by_every_element_outside_it(string group)
    {
        var task = KnownAnswerTask.Create(group, objects: 3, size: 13, seed: 5);
        var a = SymmetryGroup.Parse(group);
        Assert.Equal(8 / a.Order, task.Cosets);
        Assert.Equal(3 * task.Cosets, task.Classes);

        // Without noise, the images of a class are its object under the elements of one coset.
        var images = task.Images(task.Classes * 40, seed: 2, noise: 0);
        var byClass = images.GroupBy(i => i.Label).ToDictionary(g => g.Key, g => g.Select(i => Key(i.Pixels)).ToHashSet());
        Assert.Equal(task.Classes, byClass.Count);
        Assert.All(byClass.Values, set => Assert.Equal(a.Order, set.Count));
        foreach (var (label, set) in byClass)
        {
            foreach (var g in D4Element.All)
            {
                var source = PixelAction.SourceIndices(g, task.Size, task.Size);
                var moved = set.Select(k => Key(source.Select(s => Pixels(k)[s]).ToArray())).ToHashSet();
                // g in A keeps the class's image set; g outside A moves it onto another class's set.
                bool same = moved.SetEquals(set);
                Assert.Equal(a.Elements.Contains(g), same);
                if (!same)
                {
                    Assert.Contains(byClass, other => other.Key != label && other.Value.SetEquals(moved));
                }
            }
        }
    }

    [Fact]
    public void Only_normal_subgroups_are_accepted()
    {
        var error = Assert.Throws<ArgumentException>(() => KnownAnswerTask.Create("D1V"));
        Assert.Contains("not a normal subgroup of D4", error.Message, StringComparison.Ordinal);
    }

    private static string Key(float[] pixels) => string.Join(",", pixels.Select(p => p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

    private static float[] Pixels(string key) => key.Split(',').Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
