#nullable enable
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Equinas.MLNet;

/// <summary>
/// Honours MLContext's <c>GpuDeviceId</c> and <c>FallbackToCpu</c> at training and again at load time. This version of
/// the engine runs on the CPU: when a GPU is asked for, it falls back to the CPU with a warning if
/// <c>FallbackToCpu</c> is set, and otherwise stops with an error that says what to change.
/// </summary>
internal static class DeviceCheck
{
    public static void RequireCpu(IHostEnvironment environment, IChannel channel)
    {
        if (environment is not IHostEnvironmentInternal { GpuDeviceId: int id } settings)
        {
            return;
        }

        string why = torch.cuda.is_available()
            ? "this version of Equinas.MLNet runs its networks on the CPU only"
            : "this version of Equinas.MLNet runs its networks on the CPU only, and the TorchSharp backend in use has no CUDA device";
        if (settings.FallbackToCpu)
        {
            channel.Warning($"MLContext.GpuDeviceId is {id} but {why}; running on the CPU because MLContext.FallbackToCpu is true.");
            return;
        }

        throw new NotSupportedException($"MLContext.GpuDeviceId is {id} but {why}. Set MLContext.FallbackToCpu = true (or leave GpuDeviceId null) to run on the CPU.");
    }
}
