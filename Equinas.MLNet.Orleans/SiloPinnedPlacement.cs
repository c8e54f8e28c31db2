#nullable enable
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// Places a worker grain on the silo named by the first part of its key (<c>{silo address}/{slot}</c>). A key whose
/// silo has left the cluster cannot be activated: the call fails and the driver sends the candidate elsewhere.
/// </summary>
[Serializable]
internal sealed class SiloPinnedPlacement : PlacementStrategy
{
    internal static readonly SiloPinnedPlacement Instance = new();

    /// <summary>The key of slot <paramref name="slot"/> of <paramref name="silo"/>.</summary>
    public static string Key(SiloAddress silo, int slot) => $"{silo.ToParsableString()}/{slot}";

    /// <summary>The silo part of a worker key.</summary>
    public static SiloAddress Silo(string key)
    {
        int slash = key.LastIndexOf('/');
        if (slash <= 0)
        {
            throw new ArgumentException($"A worker grain key must be '{{silo}}/{{slot}}'; found '{key}'.", nameof(key));
        }

        return SiloAddress.FromParsableString(key[..slash]);
    }
}

/// <summary>Marks a grain class as placed by <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class SiloPinnedPlacementAttribute : PlacementAttribute
{
    public SiloPinnedPlacementAttribute()
        : base(SiloPinnedPlacement.Instance)
    {
    }
}

/// <summary>The director of <see cref="SiloPinnedPlacement"/>.</summary>
internal sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silo = SiloPinnedPlacement.Silo(target.GrainIdentity.Key.ToString()!);
        if (!context.GetCompatibleSilos(target).Contains(silo))
        {
            throw new SiloUnavailableException($"The worker silo {silo} of grain {target.GrainIdentity} is not in the cluster (any more).");
        }

        return Task.FromResult(silo);
    }
}
