#nullable enable
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>
/// Networks and optimisers to bytes and back, bit for bit (TorchSharp's own formats), for checkpoints and for
/// executors that send candidates elsewhere.
/// </summary>
internal static class TrainingState
{
    /// <summary>The module's state (parameters and buffers, norm statistics included).</summary>
    public static byte[] SaveNetwork(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            module.save(writer);
        }

        return stream.ToArray();
    }

    /// <summary>Loads what <see cref="SaveNetwork"/> wrote into a module of the same architecture, in place.</summary>
    /// <exception cref="InvalidDataException">The state does not fit the module.</exception>
    public static void LoadNetwork(nn.Module module, byte[] state)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(state);
        using var reader = new BinaryReader(new MemoryStream(state, writable: false));
        try
        {
            module.load(reader, strict: true);
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException)
        {
            throw new InvalidDataException($"The saved network state does not fit the network: {e.Message}", e);
        }
    }

    /// <summary>The optimiser's state: its settings and, per parameter, its moments and step counts.</summary>
    /// <exception cref="NotSupportedException">The optimiser is not one of TorchSharp's managed optimisers.</exception>
    public static byte[] SaveOptimizer(optim.Optimizer optimizer)
    {
        var helper = Managed(optimizer);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            helper.save_state_dict(writer);
        }

        return stream.ToArray();
    }

    /// <summary>Loads what <see cref="SaveOptimizer"/> wrote into an optimiser of the same kind over the same parameters.</summary>
    /// <exception cref="InvalidDataException">The state does not fit the optimiser.</exception>
    public static void LoadOptimizer(optim.Optimizer optimizer, byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var helper = Managed(optimizer);
        using var reader = new BinaryReader(new MemoryStream(state, writable: false));
        try
        {
            helper.load_state_dict(reader);
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            throw new InvalidDataException($"The saved optimiser state does not fit the optimiser: {e.Message}", e);
        }
    }

    private static OptimizerHelper Managed(optim.Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        return optimizer as OptimizerHelper
            ?? throw new NotSupportedException($"Optimiser {optimizer.GetType().Name} cannot save its state (only TorchSharp's managed optimisers can).");
    }
}
