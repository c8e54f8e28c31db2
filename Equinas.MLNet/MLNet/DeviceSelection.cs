#nullable enable
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet;

/// <summary>
/// Chooses the device networks train and predict on from MLContext's <c>GpuDeviceId</c> and <c>FallbackToCpu</c>, at
/// training and again at load time (a model is saved device-independent and put on the device chosen when it loads).
/// </summary>
/// <remarks>
/// Without <c>GpuDeviceId</c>: the CPU. With it, and a CUDA backend package in the application that sees that device
/// (<c>torch.cuda.is_available()</c> and the id below <c>torch.cuda.device_count()</c>): that CUDA device. Otherwise the
/// CPU with a warning in MLContext's log when <c>FallbackToCpu</c> is set, and an error naming the id and what was found
/// when it is not.
/// </remarks>
internal static class DeviceSelection
{
    public static Device Resolve(IHostEnvironment environment, IChannel channel)
    {
        if (environment is not IHostEnvironmentInternal { GpuDeviceId: int id } settings)
        {
            return CPU;
        }

        bool available = torch.cuda.is_available();
        int count = available ? torch.cuda.device_count() : 0;
        if (available && id >= 0 && id < count)
        {
            channel.Info($"Running on CUDA device {id} of {count} (MLContext.GpuDeviceId).");
            return new Device(DeviceType.CUDA, id);
        }

        string found = available
            ? $"the TorchSharp backend sees {count} CUDA device(s), ids 0 to {count - 1}"
            : "the TorchSharp backend in use has no CUDA device (torch.cuda.is_available() is false: the application references a CPU libtorch package, or no CUDA device or driver is present; a CUDA backend package such as libtorch-cuda-12.8-linux-x64 or TorchSharp-cuda-windows is needed)";
        if (settings.FallbackToCpu)
        {
            channel.Warning($"MLContext.GpuDeviceId is {id} but {found}; running on the CPU because MLContext.FallbackToCpu is true.");
            return CPU;
        }

        throw new NotSupportedException($"MLContext.GpuDeviceId is {id} but {found}. Set MLContext.FallbackToCpu = true to run on the CPU instead, or leave GpuDeviceId null.");
    }
}
