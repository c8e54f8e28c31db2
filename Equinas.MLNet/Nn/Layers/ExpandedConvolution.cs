#nullable enable
using TorchSharp;
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

/// <summary>
/// A convolution that expands its kernel into one conv2d filter per forward, and can keep the expanded filter for
/// inference (<see cref="FreezeForInference"/>): models that only predict then skip the expansion on every call.
/// </summary>
internal abstract class ExpandedConvolution : EquivariantModule
{
    private readonly FrozenFilter _frozen = new();

    protected ExpandedConvolution(string name) : base(name)
    {
    }

    /// <summary>Whether the expanded filter is held for inference.</summary>
    public bool IsFrozen => _frozen.IsSet;

    /// <summary>
    /// Expands the filter once and uses it for every later forward in evaluation mode. Switching to training mode drops
    /// it; call again after changing weights by hand.
    /// </summary>
    public void FreezeForInference()
    {
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var (filter, bias) = Expand();
        _frozen.Set(filter, bias);
    }

    /// <summary>Sets training or evaluation mode; training mode drops the frozen filter.</summary>
    public override void train(bool on = true)
    {
        if (on)
        {
            _frozen.Clear();
        }

        base.train(on);
    }

    /// <summary>
    /// The filter and bias an evaluation-mode forward convolves with (the frozen ones when set, else a fresh expansion),
    /// as new tensors without gradients owned by the caller's dispose scope: what an exporter writes out.
    /// </summary>
    public (Tensor Filter, Tensor? Bias) InferenceFilter()
    {
        using var noGrad = torch.no_grad();
        if (_frozen.IsSet && !training)
        {
            return (_frozen.Filter!.clone(), _frozen.Bias?.clone());
        }

        var (filter, bias) = Expand();
        return (filter.detach(), bias?.detach());
    }

    /// <summary>The expanded conv2d filter and bias of the current weights.</summary>
    protected abstract (Tensor Filter, Tensor? Bias) Expand();

    /// <summary>The convolution with an expanded filter and bias.</summary>
    protected abstract Tensor Convolve(Tensor input, Tensor filter, Tensor? expandedBias);

    /// <summary>The forward pass: with the frozen filter in evaluation mode, else expanding the current weights.</summary>
    protected Tensor Apply(Tensor input)
    {
        if (_frozen.IsSet && !training)
        {
            return Convolve(input, _frozen.Filter!, _frozen.Bias);
        }

        _frozen.Clear();
        using var scope = NewDisposeScope();
        var (filter, bias) = Expand();
        return Convolve(input, filter, bias).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _frozen.Clear();
        }

        base.Dispose(disposing);
    }
}
