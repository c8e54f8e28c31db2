#nullable enable
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// The worker side: an Orleans silo that trains candidates. <see cref="Build"/> makes a whole worker host (what
/// <c>equinas worker</c> runs); <see cref="AddEquinasWorker"/> and <see cref="UseEquinasCluster(ISiloBuilder, EquinasClusterOptions)"/>
/// add the same to an application's own silo.
/// </summary>
public static class EquinasWorkerHost
{
    /// <summary>A host running one worker silo with <paramref name="cluster"/>'s settings; start it with <c>StartAsync</c>.</summary>
    /// <param name="cluster">Membership, ports, address and TLS.</param>
    /// <param name="worker">Slots and cache; default one slot.</param>
    /// <param name="logging">Logging setup; default: warnings and errors to the console.</param>
    public static IHost Build(EquinasClusterOptions cluster, EquinasWorkerOptions? worker = null, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        cluster.Validate();
        var options = worker ?? new EquinasWorkerOptions();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        if (logging is null)
        {
            // Orleans' start-up notes (server GC, a late watchdog on a busy machine) are not a worker's problems.
            builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning)
                .AddFilter("Orleans.Runtime.Silo", LogLevel.Error).AddFilter("Orleans.Runtime.Watchdog", LogLevel.Error);
        }
        else
        {
            logging(builder.Logging);
        }

        builder.UseOrleans(silo => silo.UseEquinasCluster(cluster).AddEquinasWorker(o =>
        {
            o.Slots = options.Slots;
            o.CachedDatasets = options.CachedDatasets;
            o.Log = options.Log;
        }));
        return builder.Build();
    }

    /// <summary>Adds the Equinas worker grain, its placement and its dataset cache to a silo.</summary>
    public static ISiloBuilder AddEquinasWorker(this ISiloBuilder builder, Action<EquinasWorkerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<EquinasWorkerOptions>().Configure(o => configure?.Invoke(o)).Validate(o => o.Slots > 0 && o.CachedDatasets > 0, "EquinasWorkerOptions.Slots and CachedDatasets must be positive.");
        builder.Services.AddSingleton(sp => new DatasetCache(sp.GetRequiredService<IOptions<EquinasWorkerOptions>>().Value.CachedDatasets));
        builder.Services.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        return builder;
    }

    /// <summary>Joins a silo to the cluster described by <paramref name="cluster"/> (membership, endpoints, TLS).</summary>
    public static ISiloBuilder UseEquinasCluster(this ISiloBuilder builder, EquinasClusterOptions cluster)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(cluster);
        cluster.Validate();
        if (cluster.RedisConnectionString is { } redis)
        {
            builder.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            builder.UseRedisClustering(redis);
            builder.ConfigureEndpoints(cluster.AdvertisedAddress, cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: false);
        }
        else
        {
            builder.UseLocalhostClustering(cluster.SiloPort, cluster.GatewayPort, new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort), cluster.ServiceId, cluster.ClusterId);
        }

        if (cluster.Certificate is { } certificate)
        {
            builder.UseTls(certificate, tls => Pin(tls, certificate));
        }

        return builder;
    }

    /// <summary>Connects a client (a driver) to the cluster described by <paramref name="cluster"/>.</summary>
    public static IClientBuilder UseEquinasCluster(this IClientBuilder builder, EquinasClusterOptions cluster)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(cluster);
        cluster.Validate();
        if (cluster.RedisConnectionString is { } redis)
        {
            builder.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            builder.UseRedisClustering(redis);
        }
        else
        {
            builder.UseLocalhostClustering(cluster.GatewayPorts.ToArray(), cluster.ServiceId, cluster.ClusterId);
        }

        if (cluster.Certificate is { } certificate)
        {
            builder.UseTls(certificate, tls => Pin(tls, certificate));
        }

        return builder;
    }

    /// <summary>Both ends present <paramref name="certificate"/> and accept only a peer that presents the same one.</summary>
    private static void Pin(TlsOptions tls, X509Certificate2 certificate)
    {
        string thumbprint = certificate.Thumbprint;
        tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        tls.RemoteCertificateValidation = (remote, _, _) => remote is not null && string.Equals(remote.Thumbprint, thumbprint, StringComparison.OrdinalIgnoreCase);
        tls.OnAuthenticateAsClient = (_, ssl) => ssl.TargetHost = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
    }
}
