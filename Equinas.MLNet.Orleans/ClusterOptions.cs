#nullable enable
using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// How workers and drivers find each other: the cluster's names, its membership store, the ports and addresses, and
/// TLS. The same settings (apart from the ports of each worker) go to every worker and to the driver.
/// </summary>
/// <remarks>
/// Without <see cref="RedisConnectionString"/> the cluster is one machine's: workers and driver use Orleans' localhost
/// clustering on 127.0.0.1 (the first worker, on <see cref="PrimarySiloPort"/>, keeps the membership; the others
/// join it). With it, the membership is kept in Redis and workers on other machines can join, at
/// <see cref="AdvertisedAddress"/>, which then has to be an address those machines reach: that is the explicit step
/// that takes a worker off loopback. Workers run code on the data and weights they are sent: across machines, set
/// <see cref="Certificate"/> on every worker and driver (see docs/cluster.md).
/// </remarks>
public sealed class EquinasClusterOptions
{
    /// <summary>Gets or sets the cluster id: workers and drivers with the same id form one cluster. Default "equinas".</summary>
    public string ClusterId { get; set; } = "equinas";

    /// <summary>Gets or sets the service id (Orleans keeps it across cluster restarts). Default "equinas".</summary>
    public string ServiceId { get; set; } = "equinas";

    /// <summary>
    /// Gets or sets the Redis connection string of the membership store (StackExchange.Redis format, for example
    /// "127.0.0.1:6379"). Default: none (one machine, localhost clustering).
    /// </summary>
    public string? RedisConnectionString { get; set; }

    /// <summary>Gets or sets the address a worker listens on and announces to the cluster. Default 127.0.0.1 (loopback only).</summary>
    public IPAddress AdvertisedAddress { get; set; } = IPAddress.Loopback;

    /// <summary>Gets or sets the port workers talk to each other on (one per worker on a machine). Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Gets or sets the port drivers connect to (one per worker on a machine). Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Gets or sets, for localhost clustering, the silo port of the first worker, which keeps the membership. Default 11111.</summary>
    public int PrimarySiloPort { get; set; } = 11111;

    /// <summary>Gets or sets, for a driver with localhost clustering, the gateway ports of the workers. Default 30000.</summary>
    public IReadOnlyList<int> GatewayPorts { get; set; } = [30000];

    /// <summary>
    /// Gets or sets the certificate (with its private key) that turns on TLS: every connection is encrypted and both
    /// ends must present this same certificate (compared by thumbprint), so a client or worker without it is refused.
    /// Default: none (no TLS; keep the cluster on loopback or a trusted network).
    /// </summary>
    public X509Certificate2? Certificate { get; set; }

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    internal void Validate()
    {
        Require(!string.IsNullOrWhiteSpace(ClusterId), nameof(ClusterId), "a name", ClusterId);
        Require(!string.IsNullOrWhiteSpace(ServiceId), nameof(ServiceId), "a name", ServiceId);
        Require(RedisConnectionString is null || !string.IsNullOrWhiteSpace(RedisConnectionString), nameof(RedisConnectionString), "a connection string or null", RedisConnectionString);
        Require(AdvertisedAddress is not null, nameof(AdvertisedAddress), "an IP address", null);
        Require(RedisConnectionString is not null || IPAddress.IsLoopback(AdvertisedAddress!), nameof(AdvertisedAddress), "a loopback address unless RedisConnectionString is set (localhost clustering is one machine's)", AdvertisedAddress);
        foreach (var (name, port) in new[] { (nameof(SiloPort), SiloPort), (nameof(GatewayPort), GatewayPort), (nameof(PrimarySiloPort), PrimarySiloPort) })
        {
            Require(port is > 0 and < 65536, name, "a port in [1, 65535]", port);
        }

        Require(GatewayPorts is { Count: > 0 } && GatewayPorts.All(p => p is > 0 and < 65536), nameof(GatewayPorts), "at least one port in [1, 65535]", GatewayPorts is null ? null : string.Join(",", GatewayPorts));
        Require(Certificate is null || Certificate.HasPrivateKey, nameof(Certificate), "a certificate with its private key", Certificate?.Subject);
    }

    private static void Require(bool condition, string name, string expected, object? found)
    {
        if (!condition)
        {
            throw new ArgumentOutOfRangeException(name, $"Option {name} must be {expected}; found {found ?? "null"}.");
        }
    }
}

/// <summary>What a worker offers.</summary>
public sealed class EquinasWorkerOptions
{
    /// <summary>
    /// Gets or sets the candidates the worker trains at once, each on a thread of its own with the thread count the
    /// driver's search asks for (its <c>ThreadsPerWorker</c>). Default 1.
    /// </summary>
    public int Slots { get; set; } = 1;

    /// <summary>Gets or sets how many searches' datasets the worker keeps (by content hash). Default 2.</summary>
    public int CachedDatasets { get; set; } = 2;

    /// <summary>Where the worker says what it trains (one line as a candidate starts, one as it ends); the CLI prints them.</summary>
    internal Action<string>? Log { get; set; }
}

/// <summary>How the driver uses the cluster: call bounds and retries.</summary>
public sealed class ClusterExecutionOptions
{
    /// <summary>Gets or sets the part of every call's time bound that does not depend on its work. Default 2 minutes.</summary>
    public TimeSpan CallTimeoutBase { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Gets or sets the time allowed per training or evaluation batch of a candidate, on top of
    /// <see cref="CallTimeoutBase"/> (a call that exceeds its bound is abandoned and its candidate sent to another
    /// worker). Default 60 s, generous for the paper's network on one CPU thread.
    /// </summary>
    public TimeSpan TimeoutPerStep { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Gets or sets the calls made for one candidate before the search fails. Default 3.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Gets or sets how long the driver waits for a worker when none is in the cluster. Default 60 s.</summary>
    public TimeSpan WorkerWaitTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Gets or sets how often the driver reads the cluster's membership while a generation runs. Default 1 s.</summary>
    public TimeSpan MembershipPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets how long a busy worker may take to answer the driver's status probe (two misses in a row and its
    /// candidates go to other workers), and how long after sending a call the driver waits before it takes a slot that
    /// is idle without the call's result to have never received it (its candidate is then sent again). Default 10 s.
    /// </summary>
    public TimeSpan LivenessTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets the bound on the short calls (membership, a worker's description). Default 30 s.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    internal void Validate()
    {
        foreach (var (name, value) in new[] { (nameof(CallTimeoutBase), CallTimeoutBase), (nameof(TimeoutPerStep), TimeoutPerStep), (nameof(WorkerWaitTimeout), WorkerWaitTimeout), (nameof(MembershipPollInterval), MembershipPollInterval), (nameof(ProbeTimeout), ProbeTimeout), (nameof(LivenessTimeout), LivenessTimeout) })
        {
            if (value <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(name, $"Option {name} must be a positive time; found {value}.");
            }
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxAttempts, nameof(MaxAttempts));
    }
}
