#nullable enable
using Equinas.MLNet.Search.Execution;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// A cluster of Equinas workers on Microsoft Orleans, for
/// <see cref="EquivariantImageClassificationTrainer.Options.Cluster"/>: the evolutionary search then sends each
/// candidate to a worker and gets back the same result, bit for bit, as in process.
/// </summary>
/// <remarks>
/// Either connect with <see cref="ConnectAsync"/> (the instance then owns the connection; dispose it), or pass an
/// <see cref="IClusterClient"/> the application built (with <c>UseEquinasCluster</c>; the application keeps owning it).
/// Workers are started with <c>equinas worker</c> or <see cref="EquinasWorkerHost"/>. See docs/cluster.md.
/// </remarks>
public sealed class EquinasCluster : CandidateCluster, IAsyncDisposable, IDisposable
{
    private readonly IClusterClient _client;
    private readonly IHost? _host;
    private readonly ClusterExecutionOptions _execution;
    private readonly ILogger? _logger;
    private readonly string _description;

    /// <summary>Uses a client the application connected; it is not disposed with this instance.</summary>
    public EquinasCluster(IClusterClient client, ClusterExecutionOptions? execution = null)
        : this(client, null, execution, null, "an application's Orleans client")
    {
    }

    private EquinasCluster(IClusterClient client, IHost? host, ClusterExecutionOptions? execution, ILogger? logger, string description)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _host = host;
        _execution = execution ?? new ClusterExecutionOptions();
        _execution.Validate();
        _logger = logger;
        _description = description;
    }

    /// <inheritdoc/>
    public override string Description => _description;

    /// <summary>
    /// Gets or sets where the cluster's messages go (a worker lost, a candidate sent to another worker). Default: the
    /// connection's logger as warnings (none for a client the application built).
    /// </summary>
    public Action<string>? Log { get; set; }

    /// <summary>The client the candidates go through.</summary>
    internal IClusterClient Client => _client;

    /// <summary>The executors made so far (the benchmark and tests read their costs).</summary>
    internal List<ClusterExecutor> Executors { get; } = [];

    /// <summary>Connects a driver to the cluster described by <paramref name="cluster"/>.</summary>
    /// <exception cref="InvalidOperationException">No worker answered (the message says where it looked).</exception>
    public static async Task<EquinasCluster> ConnectAsync(EquinasClusterOptions cluster, ClusterExecutionOptions? execution = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        cluster.Validate();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client => client.UseEquinasCluster(cluster));
        var host = builder.Build();
        string where = cluster.RedisConnectionString is { } redis
            ? $"cluster '{cluster.ClusterId}' in Redis {redis}"
            : $"localhost cluster '{cluster.ClusterId}' on gateway port(s) {string.Join(",", cluster.GatewayPorts)}";
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            host.Dispose();
            throw new InvalidOperationException($"Could not connect to the {where}{(cluster.Certificate is null ? string.Empty : " with TLS")}: {e.Message} Start a worker first ('equinas worker').", e);
        }

        var client = host.Services.GetRequiredService<IClusterClient>();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Equinas.Cluster");
        return new EquinasCluster(client, host, execution, logger, where + (cluster.Certificate is null ? string.Empty : " (TLS)"));
    }

    /// <inheritdoc/>
    internal override ICandidateExecutor CreateExecutor(int threadsPerJob)
    {
        var executor = new ClusterExecutor(_client, threadsPerJob, _execution, m =>
        {
            if (Log is { } log)
            {
                log(m);
            }
            else
            {
                _logger?.LogWarning("{Message}", m);
            }
        });
        lock (Executors)
        {
            Executors.Add(executor);
        }

        return executor;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync().ConfigureAwait(false);
            _host.Dispose();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
