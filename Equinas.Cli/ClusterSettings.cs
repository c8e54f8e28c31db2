using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Equinas.MLNet.Orleans;

namespace Equinas.Cli;

/// <summary>
/// The cluster options shared by <c>equinas worker</c> and <c>equinas train --cluster</c>: where the membership is
/// kept, the cluster's id and TLS.
/// </summary>
internal sealed record ClusterSettings
{
    /// <summary>"localhost" (one machine; optionally ":PORT,PORT" for the workers' gateway ports) or "redis=CONNECTION".</summary>
    public string Cluster { get; init; } = "localhost";

    public string ClusterId { get; init; } = "equinas";

    /// <summary>A PKCS#12 (.pfx) file with the certificate and its private key: turns TLS on.</summary>
    public string? TlsCertificate { get; init; }

    /// <summary>The .pfx file's password (or the environment variable EQUINAS_TLS_PASSWORD).</summary>
    public string? TlsPassword { get; init; }

    /// <summary>The Orleans settings these options describe.</summary>
    /// <exception cref="ArgumentException">An option is malformed; the message names it.</exception>
    public EquinasClusterOptions ToOptions()
    {
        var options = new EquinasClusterOptions { ClusterId = ClusterId, ServiceId = ClusterId };
        if (Cluster.StartsWith("redis=", StringComparison.Ordinal))
        {
            string connection = Cluster["redis=".Length..];
            if (string.IsNullOrWhiteSpace(connection))
            {
                throw new ArgumentException("--cluster redis=CONNECTION: the Redis connection string is empty (e.g. redis=127.0.0.1:6379).");
            }

            options.RedisConnectionString = connection;
        }
        else if (Cluster == "localhost" || Cluster.StartsWith("localhost:", StringComparison.Ordinal))
        {
            if (Cluster.Length > "localhost".Length)
            {
                var ports = Cluster["localhost:".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                options.GatewayPorts = ports.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536
                    ? port
                    : throw new ArgumentException($"--cluster {Cluster}: '{p}' is not a port (expected localhost:PORT,PORT,...).")).ToArray();
            }
        }
        else
        {
            throw new ArgumentException($"--cluster {Cluster}: expected localhost, localhost:PORT[,PORT...] or redis=CONNECTION.");
        }

        if (TlsCertificate is { } file)
        {
            if (!File.Exists(file))
            {
                throw new ArgumentException($"--tls-cert {file}: no such file (expected a .pfx file with the certificate and its private key).");
            }

            string? password = TlsPassword ?? Environment.GetEnvironmentVariable("EQUINAS_TLS_PASSWORD");
            try
            {
                options.Certificate = X509CertificateLoader.LoadPkcs12FromFile(file, password);
            }
            catch (System.Security.Cryptography.CryptographicException e)
            {
                throw new ArgumentException($"--tls-cert {file}: could not be read as a PKCS#12 file with that password ({e.Message}).", e);
            }

            if (!options.Certificate.HasPrivateKey)
            {
                throw new ArgumentException($"--tls-cert {file}: the certificate has no private key (export it with its key).");
            }
        }

        return options;
    }
}

/// <summary>The settings of <c>equinas worker</c>.</summary>
internal sealed record WorkerSettings
{
    public ClusterSettings Cluster { get; init; } = new();

    public string Address { get; init; } = "127.0.0.1";

    public int SiloPort { get; init; } = 11111;

    public int GatewayPort { get; init; } = 30000;

    public int PrimaryPort { get; init; } = 11111;

    public int Slots { get; init; } = 1;

    public EquinasClusterOptions ToOptions()
    {
        var options = Cluster.ToOptions();
        if (!IPAddress.TryParse(Address, out var address))
        {
            throw new ArgumentException($"--address {Address}: not an IP address.");
        }

        if (!IPAddress.IsLoopback(address) && options.RedisConnectionString is null)
        {
            throw new ArgumentException($"--address {Address}: a worker leaves loopback only in a cluster with a membership store (--cluster redis=...); localhost clustering is one machine's.");
        }

        if (Slots <= 0)
        {
            throw new ArgumentException($"--slots must be positive; found {Slots}.");
        }

        options.AdvertisedAddress = address;
        options.SiloPort = SiloPort;
        options.GatewayPort = GatewayPort;
        options.PrimarySiloPort = PrimaryPort;
        return options;
    }
}
