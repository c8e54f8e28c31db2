#nullable enable
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Networks;

/// <summary>
/// Seeded weight initialisation. libtorch has one process-wide random generator, and weight initialisation is the only
/// place the engine draws from it (batch order, splits and the searches' choices use seeded .NET generators). Every
/// network the engine builds for training is built here: the seed is set and the network constructed under one
/// process-wide lock, so that trainings running at the same time (two <c>Fit</c> calls, parallel candidates) cannot
/// interleave their draws, and a training is deterministic for its seed whatever else the engine does meanwhile.
/// Networks whose initial weights are overwritten at once (copies, relaxed networks, networks loaded from a model or a
/// checkpoint) are built under the same lock (<see cref="Overwritten{T}(Func{T})"/>): their construction draws too, and unlocked it
/// could land between another training's seeding and its draws.
/// Code outside the engine that draws from libtorch's generator while a network is being built is not covered.
/// </summary>
internal static class SeededInit
{
    private static readonly object Gate = new();

    /// <summary>Sets libtorch's generator to <paramref name="seed"/> and runs <paramref name="create"/>, atomically.</summary>
    public static T Create<T>(int seed, Func<T> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        lock (Gate)
        {
            torch.manual_seed(seed);
            return create();
        }
    }

    /// <summary>
    /// Like <see cref="Create{T}(int, Func{T})"/>, then moves the module to <paramref name="device"/> (null: it stays on
    /// the CPU). Networks are built on the CPU and moved, so a seed gives the same initial weights on every device (a
    /// CUDA device has generators of its own).
    /// </summary>
    public static T Create<T>(int seed, Func<T> create, Device? device)
        where T : nn.Module => MoveTo(Create(seed, create), device);

    /// <summary>Like <see cref="Overwritten{T}(Func{T})"/>, then moves the module to <paramref name="device"/> (null: it stays on the CPU).</summary>
    public static T Overwritten<T>(Func<T> create, Device? device)
        where T : nn.Module => MoveTo(Overwritten(create), device);

    /// <summary>Moves <paramref name="module"/>'s parameters and buffers to <paramref name="device"/> in place (null or the same device: nothing).</summary>
    public static T MoveTo<T>(T module, Device? device)
        where T : nn.Module
    {
        ArgumentNullException.ThrowIfNull(module);
        if (device is null)
        {
            return module;
        }

        bool there = module.parameters().Cast<Tensor>().Concat(module.buffers()).All(t => t.device_type == device.type && (device.index < 0 || t.device_index == device.index));
        return there ? module : module.to(device);
    }

    /// <summary>
    /// Runs <paramref name="create"/> under the lock without seeding: for networks whose initial weights the caller
    /// overwrites (the draws are thrown away, but must not interleave with a seeded construction elsewhere).
    /// </summary>
    public static T Overwritten<T>(Func<T> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        lock (Gate)
        {
            return create();
        }
    }
}
