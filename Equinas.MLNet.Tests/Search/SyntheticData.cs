using Equinas.MLNet.Groups;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search;

/// <summary>A tiny task for training tests: each class is a fixed 5x5 motif at a random place and orientation, plus noise.</summary>
internal static class SyntheticData
{
    public static ImageDataset Motifs(int count, int classes, int size, int seed)
    {
        var motifRandom = new Random(42);
        var motifs = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, 25).Select(_ => motifRandom.NextDouble() < 0.5 ? 1f : 0f).ToArray()).ToArray();
        var random = new Random(seed);
        var pixels = new float[count * size * size];
        var labels = new long[count];
        for (int n = 0; n < count; n++)
        {
            int label = n % classes;
            labels[n] = label;
            var source = PixelAction.SourceIndices(D4Element.FromIndex(random.Next(8)), 5, 5);
            int top = random.Next(size - 5), left = random.Next(size - 5);
            for (int p = 0; p < 25; p++)
            {
                pixels[(n * size * size) + ((top + (p / 5)) * size) + left + (p % 5)] = motifs[label][source[p]];
            }

            for (int p = 0; p < size * size; p++)
            {
                pixels[(n * size * size) + p] += (float)(0.2 * random.NextDouble());
            }
        }

        return new ImageDataset(torch.tensor(pixels, [count, 1, size, size]), torch.tensor(labels), classes);
    }
}
