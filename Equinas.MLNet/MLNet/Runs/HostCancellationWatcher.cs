#nullable enable
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Runs;

/// <summary>
/// Turns MLContext's own cancellation (CancelExecution, which tools call) into the training token: a dedicated
/// background thread (not the thread pool, which training can starve) polls the host every 50 ms.
/// </summary>
internal sealed class HostCancellationWatcher : IDisposable
{
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread? _thread;

    public HostCancellationWatcher(IHost host, CancellationTokenSource cancellation)
    {
        if (host is not ICancelable cancelable)
        {
            return;
        }

        _thread = new Thread(() =>
        {
            while (!_stop.Wait(50))
            {
                if (cancelable.IsCanceled)
                {
                    cancellation.Cancel();
                    return;
                }
            }
        })
        {
            IsBackground = true,
            Name = "Equinas host cancellation",
        };
        _thread.Start();
    }

    public void Dispose()
    {
        _stop.Set();
        _thread?.Join();
        _stop.Dispose();
    }
}
