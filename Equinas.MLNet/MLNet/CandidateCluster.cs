#nullable enable
using Equinas.MLNet.Search.Execution;

namespace Equinas.MLNet;

/// <summary>
/// Where the evolutionary search trains its candidates when they should not train in this process: a cluster of
/// worker machines. Set an instance as <see cref="EquivariantImageClassificationTrainer.Options.Cluster"/>.
/// </summary>
/// <remarks>
/// <para>
/// This library defines only the extension point and has no networking of its own: the implementation is in the
/// <c>Equinas.MLNet.Orleans</c> package (<c>EquinasCluster</c>, on Microsoft Orleans), so that applications that
/// train in one process never depend on a distributed runtime.
/// </para>
/// <para>
/// A search on a cluster gives the same model, bit for bit, as the same search in process with the same
/// <see cref="EquivariantImageClassificationTrainer.Options.ThreadsPerWorker"/>: each candidate carries its own seed
/// and thread count, and the workers train it as this process would. The instance is not disposed by the trainer: the
/// application that made it owns it and may use it for several <c>Fit</c> calls.
/// </para>
/// </remarks>
public abstract class CandidateCluster
{
    /// <summary>Only the cluster implementations that ship with Equinas.MLNet derive from this class.</summary>
    internal CandidateCluster()
    {
    }

    /// <summary>Gets a one-line description of the cluster for logs (for example its membership store and worker count).</summary>
    public abstract string Description { get; }

    /// <summary>
    /// An executor for one search whose candidates each train with <paramref name="threadsPerJob"/> libtorch threads.
    /// Disposed by the search when it ends when it implements <see cref="IDisposable"/>.
    /// </summary>
    internal abstract ICandidateExecutor CreateExecutor(int threadsPerJob);
}
