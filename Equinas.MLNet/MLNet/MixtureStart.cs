#nullable enable
namespace Equinas.MLNet;

/// <summary>
/// Where the differentiable search's mixture weights z start in every layer. The search moves z away from its start
/// as far as the validation data give it reason to, so the start is a prior: measured on the shipped digits
/// (docs/results/README.md), the uniform start ends with z near uniform and a mixture that generalises like a plain
/// CNN, while the top-group start keeps the symmetry the data have and gives up the rest. The values equal the
/// engine's internal start (as <see cref="HeadPoolingMode"/>'s do); the model's settings record the name.
/// </summary>
public enum MixtureStart
{
    /// <summary>
    /// Every logit 0 (every member weighs the same): the paper's search, and what models trained before this option
    /// existed did.
    /// </summary>
    Uniform = 0,

    /// <summary>
    /// Each layer's top-group member has logit 0 and every other member -2 (z of about 0.45 for D4 against 0.06 for
    /// each of the 9 other subgroups): the search starts near the fully equivariant network, as the evolutionary
    /// search starts at all-top-group, and relaxes a layer where the data reward it. The default.
    /// </summary>
    TopGroup = 1,
}
