using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xunit;

namespace Equinas.MLNet.Orleans.Tests;

/// <summary>TLS on loopback with self-signed certificates: a worker talks only to a client with its certificate.</summary>
public sealed class TlsTests
{
    private static X509Certificate2 SelfSigned(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // Through PKCS#12, as a .pfx file given to 'equinas worker --tls-cert' would be read.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), password: null);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task A_worker_with_TLS_serves_a_client_with_its_certificate_and_refuses_one_without_it_or_with_another()
    {
        using var certificate = SelfSigned("equinas-worker");
        using var other = SelfSigned("equinas-worker");
        int silo = FreePort(), gateway = FreePort();
        EquinasClusterOptions Options(X509Certificate2? cert) => new()
        {
            ClusterId = "tls-test",
            ServiceId = "tls-test",
            SiloPort = silo,
            PrimarySiloPort = silo,
            GatewayPort = gateway,
            GatewayPorts = [gateway],
            Certificate = cert,
        };

        using var worker = EquinasWorkerHost.Build(Options(certificate));
        await worker.StartAsync();
        try
        {
            var quick = new ClusterExecutionOptions { WorkerWaitTimeout = TimeSpan.FromSeconds(5) };
            await using (var trusted = await EquinasCluster.ConnectAsync(Options(certificate)))
            {
                Assert.Contains("(TLS)", trusted.Description, StringComparison.Ordinal);
                // A real call over the encrypted connection.
                var hosts = await trusted.Client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
                var description = await trusted.Client.GetGrain<ICandidateWorkerGrain>(SiloPinnedPlacement.Key(Assert.Single(hosts).Key, 0)).Describe();
                Assert.Equal(1, description.Slots);
            }

            // Without the certificate, or with another one: the handshake is refused. The client sees only a connection
            // that the worker closed (Orleans retries it), so the driver gives up after WorkerWaitTimeout and says that
            // TLS is the likely cause and which option sets it.
            foreach (var wrong in new[] { null, other })
            {
                using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                var watch = System.Diagnostics.Stopwatch.StartNew();
                var e = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
                {
                    await using var refused = await EquinasCluster.ConnectAsync(Options(wrong), quick, safety.Token);
                });
                Assert.False(safety.IsCancellationRequested, "refused only by the test's own limit");
                Assert.Contains("TLS", e.Message, StringComparison.Ordinal);
                Assert.Contains("EquinasClusterOptions.Certificate", e.Message, StringComparison.Ordinal);
                Assert.Contains("--tls-cert", e.Message, StringComparison.Ordinal);
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
            }
        }
        finally
        {
            await worker.StopAsync();
        }
    }
}
