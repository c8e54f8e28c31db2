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
        // Orleans retries a failed connection inside one attempt and only logs why: the last reason is kept for the message.
        var connectionErrors = new ConnectionErrors();
        builder.Logging.AddProvider(connectionErrors);
        var waitFor = (execution ?? new ClusterExecutionOptions()).WorkerWaitTimeout;
        var retry = new ConnectRetry(waitFor);
        builder.UseOrleansClient(client => client.UseEquinasCluster(cluster).UseConnectionRetryFilter(retry));
        var host = builder.Build();
        string where = cluster.RedisConnectionString is { } redis
            ? $"cluster '{cluster.ClusterId}' in Redis {redis}"
            : $"localhost cluster '{cluster.ClusterId}' on gateway port(s) {string.Join(",", cluster.GatewayPorts)}";
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(waitFor);
        try
        {
            await host.StartAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            host.Dispose();
            throw new InvalidOperationException(ConnectFailure(where, cluster.Certificate is not null, waitFor, retry.Last ?? connectionErrors.Last ?? e), e);
        }

        var client = host.Services.GetRequiredService<IClusterClient>();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Equinas.Cluster");
        return new EquinasCluster(client, host, execution, logger, where + (cluster.Certificate is null ? string.Empty : " (TLS)"));
    }

    /// <summary>
    /// Why a driver could not connect, in words. A TLS mismatch reaches an Orleans client only as a connection the
    /// worker closed (the worker logs the failed handshake), so that case names the certificate option.
    /// </summary>
    internal static string ConnectFailure(string where, bool tls, TimeSpan waited, Exception last)
    {
        var chain = new List<Exception>();
        for (var e = last; e is not null; e = e.InnerException)
        {
            chain.Add(e);
        }

        string error = $"{last.GetType().Name}: {last.Message.Split('\n')[0].Trim()}";
        string head = $"Could not connect to the {where}{(tls ? " with TLS" : string.Empty)} within {waited.TotalSeconds:F0} s (ClusterExecutionOptions.WorkerWaitTimeout); last error {error}.";
        if (chain.Any(e => e is System.Security.Authentication.AuthenticationException))
        {
            return $"{head} The TLS handshake failed: driver and workers must use the same certificate (EquinasClusterOptions.Certificate, 'equinas --tls-cert').";
        }

        bool refused = chain.Any(e => e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused });
        bool closed = !refused && chain.Any(e => e is Microsoft.AspNetCore.Connections.ConnectionAbortedException or Microsoft.AspNetCore.Connections.ConnectionResetException
            || e.Message.Contains("connection closed", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("terminated", StringComparison.OrdinalIgnoreCase));
        if (closed)
        {
            return tls
                ? $"{head} A worker accepted the connection and closed it: most likely a TLS mismatch (the workers run without TLS, or with another certificate than EquinasClusterOptions.Certificate / 'equinas --tls-cert' here)."
                : $"{head} A worker accepted the connection and closed it: most likely a TLS mismatch (the workers run with TLS, 'equinas worker --tls-cert': give this driver the same certificate, EquinasClusterOptions.Certificate or 'equinas train --tls-cert').";
        }

        // Nothing more specific is known (Orleans kept retrying): no worker runs there, or one refused this driver's TLS.
        return tls
            ? $"{head} Either no worker runs there (start one with 'equinas worker', the same cluster id and certificate), or the workers refused this driver's TLS: they run without TLS, or with another certificate than EquinasClusterOptions.Certificate / 'equinas --tls-cert' here."
            : $"{head} Either no worker runs there (start one with 'equinas worker', the same cluster id), or the workers run with TLS ('equinas worker --tls-cert') and refuse a driver without their certificate: set EquinasClusterOptions.Certificate ('equinas train --tls-cert') to the same one.";
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

/// <summary>Retries a driver's connection attempts until a time limit, keeping the last error for the message.</summary>
internal sealed class ConnectRetry(TimeSpan limit) : IClientConnectionRetryFilter
{
    private readonly System.Diagnostics.Stopwatch _watch = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>The last attempt's error.</summary>
    public Exception? Last { get; private set; }

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        Last = exception;
        if (_watch.Elapsed >= limit || cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
        return true;
    }
}

/// <summary>Keeps the last exception Orleans' networking logged (a driver's connection attempts log their failures only).</summary>
internal sealed class ConnectionErrors : ILoggerProvider
{
    private Exception? _last;

    /// <summary>The last exception logged by Orleans' messaging or connection code.</summary>
    public Exception? Last => Volatile.Read(ref _last);

    public ILogger CreateLogger(string categoryName) =>
        categoryName.StartsWith("Orleans.Runtime.Messaging", StringComparison.Ordinal) || categoryName.StartsWith("Orleans.Connections", StringComparison.Ordinal) || categoryName.StartsWith("Orleans.Messaging", StringComparison.Ordinal)
            ? new Recorder(this)
            : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public void Dispose()
    {
    }

    private sealed class Recorder(ConnectionErrors owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is not null && logLevel >= LogLevel.Warning)
            {
                Volatile.Write(ref owner._last, exception);
            }
        }
    }
}
