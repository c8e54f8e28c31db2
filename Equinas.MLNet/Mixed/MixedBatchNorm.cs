#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>
/// Normalisation of a mixed layer's output: <c>sum_G z_G BN_G(y)</c>, where BN_G is the group-shared batch norm of the
/// fixed G layer (statistics and affine parameters per G-field, a block of |G| consecutive scalar channels in the G0
/// layout). Each BN_G is an affine map per channel, so the mixture is one affine map per channel computed from one pass
/// of per-channel statistics: it costs one normalisation, and a one-hot z gives exactly the fixed layer's norm
/// (in training and evaluation mode).
/// </summary>
internal sealed class MixedBatchNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly ParameterList weights;
    private readonly ParameterList biases;
#pragma warning restore IDE1006

    private long _batchesTracked;

    public MixedBatchNorm(IReadOnlyList<SymmetryGroup> members, int channels, double eps = 1e-5, double momentum = 0.1)
        : base(nameof(MixedBatchNorm))
    {
        ArgumentNullException.ThrowIfNull(members);
        Members = members.ToArray();
        Channels = channels;
        Eps = eps;
        Momentum = momentum;
        weights = new ParameterList();
        biases = new ParameterList();
        for (int m = 0; m < Members.Count; m++)
        {
            int fields = channels / Members[m].Order;
            weights.Add(new Parameter(torch.ones(fields)));
            biases.Add(new Parameter(torch.zeros(fields)));
            register_buffer($"running_mean_{m}", torch.zeros(fields));
            register_buffer($"running_var_{m}", torch.ones(fields));
        }

        RegisterComponents();
    }

    public IReadOnlyList<SymmetryGroup> Members { get; }

    public int Channels { get; }

    public double Eps { get; }

    /// <summary>Weight of a new batch in the running statistics; null for a cumulative average (as in BatchNorm).</summary>
    public double? Momentum { get; set; }

    /// <summary>Resets the running statistics to mean 0 and variance 1.</summary>
    public void ResetRunningStats()
    {
        using var noGrad = torch.no_grad();
        for (int m = 0; m < Members.Count; m++)
        {
            get_buffer($"running_mean_{m}")!.zero_();
            get_buffer($"running_var_{m}")!.fill_(1);
        }

        _batchesTracked = 0;
    }

    public override Tensor forward(Tensor input) => throw new InvalidOperationException("MixedBatchNorm needs the layer's z: call Forward(input, z).");

    /// <summary>Normalises <c>B x F0 x |G0| x H x W</c> (any layout whose channel j belongs to G-field j / |G|).</summary>
    public Tensor Forward(Tensor input, Tensor z)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(z);
        using var scope = NewDisposeScope();
        var shape = input.shape;
        // B x C x (H W): scalar channel j = f0 |G0| + g0 of the G0 layout, which belongs to G-field j / |G|.
        var y = input.reshape(shape[0], Channels, shape[3] * shape[4]);
        Tensor? channelMean = null, channelSquare = null;
        long perChannel = shape[0] * shape[3] * shape[4];
        double momentum = 0;
        if (training)
        {
            _batchesTracked++;
            momentum = Momentum ?? (1.0 / _batchesTracked);
            channelMean = y.mean([0, 2]);
            channelSquare = (y * y).mean([0, 2]);
        }

        Tensor? scale = null, shift = null;
        for (int m = 0; m < Members.Count; m++)
        {
            int order = Members[m].Order;
            // Looked up by name, so that the buffers that Module.to(device) swaps in are the ones used.
            var runningMean = get_buffer($"running_mean_{m}")!;
            var runningVar = get_buffer($"running_var_{m}")!;
            Tensor mean, variance;
            if (training)
            {
                mean = channelMean!.view(-1, order).mean([1]);
                variance = (channelSquare!.view(-1, order).mean([1]) - (mean * mean)).clamp_min(0);
                using (torch.no_grad())
                {
                    long n = perChannel * order;
                    runningMean.mul_(1 - momentum).add_(mean.detach() * momentum);
                    runningVar.mul_(1 - momentum).add_(variance.detach() * (momentum * n / Math.Max(n - 1, 1)));
                }
            }
            else
            {
                mean = runningMean;
                variance = runningVar;
            }

            var a = weights[m] / (variance + Eps).sqrt();
            var c = biases[m] - (mean * a);
            var za = (a * z[m]).repeat_interleave(order);
            var zc = (c * z[m]).repeat_interleave(order);
            scale = scale is null ? za : scale + za;
            shift = shift is null ? zc : shift + zc;
        }

        var output = (y * scale!.view(1, -1, 1)) + shift!.view(1, -1, 1);
        return output.view(shape).MoveToOuterDisposeScope();
    }
}
