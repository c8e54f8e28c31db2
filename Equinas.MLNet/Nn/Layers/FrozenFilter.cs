#nullable enable
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// An expanded conv2d filter and bias kept for inference by a convolution layer. Held outside the module's fields of
/// type Tensor on purpose: TorchSharp would register those as buffers and put them into the saved state.
/// </summary>
internal sealed class FrozenFilter
{
    public Tensor? Filter { get; private set; }

    public Tensor? Bias { get; private set; }

    public bool IsSet => Filter is not null;

    /// <summary>Takes detached copies of the tensors, out of any dispose scope.</summary>
    public void Set(Tensor filter, Tensor? bias)
    {
        Clear();
        Filter = filter.detach().contiguous().DetachFromDisposeScope();
        Bias = bias?.detach().contiguous().DetachFromDisposeScope();
    }

    public void Clear()
    {
        if (Filter is null && Bias is null)
        {
            return;
        }

        Filter?.Dispose();
        Bias?.Dispose();
        Filter = null;
        Bias = null;
    }
}
