using Equinas.MLNet.Groups;

namespace Equinas.Data;

/// <summary>
/// A classification task whose symmetry is known exactly, for testing what a search reports. For a normal subgroup A
/// of D4 and a few objects without any symmetry of their own, the classes are the pairs (object, coset gA of A), and
/// every image is its object moved by an element drawn uniformly from its coset, plus noise. The label is then
/// unchanged by every element of A and changed by every element outside A, so a network whose last layer is invariant
/// to a group not inside A cannot tell some classes apart: the last layer's group must lie inside A (earlier layers
/// may keep more, as equivariance loses nothing).
/// </summary>
public sealed class KnownAnswerTask
{
    private readonly float[][] _objects;
    private readonly int[] _cosetOf;

    private KnownAnswerTask(string group, int size, float[][] objects, int[] cosetOf, int cosets)
    {
        Group = group;
        Size = size;
        _objects = objects;
        _cosetOf = cosetOf;
        Cosets = cosets;
    }

    /// <summary>Gets the group A the labels are invariant to.</summary>
    public string Group { get; }

    /// <summary>Gets the side of the square images.</summary>
    public int Size { get; }

    /// <summary>Gets the number of objects.</summary>
    public int Objects => _objects.Length;

    /// <summary>Gets the number of cosets of A in D4 (8 / |A|).</summary>
    public int Cosets { get; }

    /// <summary>Gets the number of classes: objects times cosets.</summary>
    public int Classes => Objects * Cosets;

    /// <summary>The groups the task is defined for: the normal subgroups of D4.</summary>
    public static IReadOnlyList<string> NormalSubgroups { get; } = ["C1", "C2", "C4", "D2VH", "D2DA", "D4"];

    /// <summary>Makes the task: <paramref name="objects"/> random stroke figures on a <paramref name="size"/>-pixel grid, none of them symmetric.</summary>
    /// <param name="group">A normal subgroup of D4: C1, C2, C4, D2VH, D2DA or D4.</param>
    /// <param name="objects">How many objects (at least 1).</param>
    /// <param name="size">Image side, at least 9 (odd sizes keep pooling exact: 17 -> 9 -> 5).</param>
    /// <param name="seed">The seed of the objects (the same seed gives the same objects for every group).</param>
    /// <returns>The task.</returns>
    /// <exception cref="ArgumentException">The group is not a normal subgroup of D4, or a count is out of range.</exception>
    public static KnownAnswerTask Create(string group, int objects = 4, int size = 17, int seed = 1)
    {
        var a = SymmetryGroup.Parse(group);
        if (!NormalSubgroups.Contains(a.Name))
        {
            throw new ArgumentException($"Group '{group}' is not a normal subgroup of D4; expected one of {string.Join(", ", NormalSubgroups)} (cosets of other subgroups do not give A-invariant labels).", nameof(group));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(objects);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 9);

        // Coset gA of every element, numbered in order of first appearance.
        var cosetOf = new int[8];
        var seen = new Dictionary<int, int>();
        foreach (var g in D4Element.All)
        {
            int mask = a.Elements.Aggregate(0, (m, e) => m | (1 << (g * e).Index));
            if (!seen.TryGetValue(mask, out int id))
            {
                id = seen.Count;
                seen[mask] = id;
            }

            cosetOf[g.Index] = id;
        }

        var random = new Random(seed);
        var figures = new float[objects][];
        for (int o = 0; o < objects; o++)
        {
            float[] figure;
            do
            {
                figure = Strokes(random, size);
            }
            while (!Asymmetric(figure, size) || figures.Take(o).Any(other => Distance(other, figure) < 0.5));

            figures[o] = figure;
        }

        return new KnownAnswerTask(a.Name, size, figures, cosetOf, seen.Count);
    }

    /// <summary>Labelled images: each class equally often, each image its object moved by a uniform element of the class's coset, with Gaussian noise.</summary>
    /// <param name="count">How many images.</param>
    /// <param name="seed">The seed of the classes, elements and noise (use different seeds for training and test).</param>
    /// <param name="noise">Standard deviation of the pixel noise.</param>
    /// <returns>Images with labels in [0, <see cref="Classes"/>): object x cosets + coset.</returns>
    public IReadOnlyList<DigitImage> Images(int count, int seed, double noise = 0.25)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var random = new Random(seed);
        var sources = D4Element.All.Select(e => PixelAction.SourceIndices(e, Size, Size)).ToArray();
        var images = new DigitImage[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % Classes;
            int o = label / Cosets, coset = label % Cosets;
            var members = D4Element.All.Where(g => _cosetOf[g.Index] == coset).ToArray();
            var g = members[random.Next(members.Length)];
            var source = sources[g.Index];
            var figure = _objects[o];
            var pixels = new float[figure.Length];
            for (int p = 0; p < pixels.Length; p++)
            {
                pixels[p] = figure[source[p]] + (float)(noise * Gaussian(random));
            }

            images[i] = new DigitImage(label, pixels);
        }

        // Classes interleaved above; shuffle so that batches mix them.
        random.Shuffle(images);
        return images;
    }

    /// <summary>Three random strokes (random walks of a 2-pixel pen) inside a margin, intensity in [0, 1].</summary>
    private static float[] Strokes(Random random, int size)
    {
        var figure = new float[size * size];
        int margin = 2;
        for (int s = 0; s < 3; s++)
        {
            double y = margin + (random.NextDouble() * (size - (2 * margin) - 1));
            double x = margin + (random.NextDouble() * (size - (2 * margin) - 1));
            double angle = random.NextDouble() * 2 * Math.PI;
            int length = 4 + random.Next(size / 2);
            for (int step = 0; step < length; step++)
            {
                int iy = (int)Math.Round(y), ix = (int)Math.Round(x);
                for (int dy = 0; dy <= 1; dy++)
                {
                    for (int dx = 0; dx <= 1; dx++)
                    {
                        int py = Math.Clamp(iy + dy, 0, size - 1), px = Math.Clamp(ix + dx, 0, size - 1);
                        figure[(py * size) + px] = 1f;
                    }
                }

                angle += (random.NextDouble() - 0.5) * 0.9;
                y = Math.Clamp(y + Math.Sin(angle), margin, size - margin - 1);
                x = Math.Clamp(x + Math.Cos(angle), margin, size - margin - 1);
            }
        }

        return figure;
    }

    /// <summary>No element but the identity maps the figure close to itself (relative distance at least 0.5).</summary>
    private static bool Asymmetric(float[] figure, int size) =>
        D4Element.All.Skip(1).All(g =>
        {
            var source = PixelAction.SourceIndices(g, size, size);
            return Distance(figure, source.Select(s => figure[s]).ToArray()) >= 0.5;
        });

    /// <summary>|a - b| / |a|, Euclidean.</summary>
    private static double Distance(float[] a, float[] b)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff += (a[i] - b[i]) * (a[i] - b[i]);
            norm += a[i] * a[i];
        }

        return Math.Sqrt(diff / Math.Max(norm, 1e-12));
    }

    private static double Gaussian(Random random)
    {
        double u = 1 - random.NextDouble(), v = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }
}
