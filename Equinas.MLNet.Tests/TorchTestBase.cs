using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests;

/// <summary>Shared set-up for tests that use TorchSharp: a fixed thread count and seeded generators.</summary>
public abstract class TorchTestBase
{
    /// <summary>
    /// Two threads: the CI machine has two cores. Set once per process, before any parallel work (libtorch allows
    /// changing the intra-op pool size only before it is first used).
    /// </summary>
    public const int Threads = 2;

    private static readonly object Gate = new();
    private static bool s_initialised;

    protected TorchTestBase()
    {
        lock (Gate)
        {
            if (!s_initialised)
            {
                torch.set_num_threads(Threads);
                s_initialised = true;
            }
        }

        torch.manual_seed(1234);
    }

    /// <summary>
    /// The networks alive now, after every network an earlier test left to the finaliser has been finalised, so that
    /// a test comparing the count before and after itself sees only its own networks.
    /// </summary>
    protected static long LiveNetworksSettled()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        return Equinas.MLNet.Nn.Networks.GroupCnn.LiveInstances;
    }

    /// <summary>Same shape and bit-identical values.</summary>
    protected static bool BitEqual(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>max |a - b| / max |b|, the relative error used by every equivariance assertion.</summary>
    protected static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
        return (actual - expected).abs().max().item<float>() / scale;
    }
}
