using System.Net;
using System.Net.Sockets;
using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>A client pointed at an address where no silo listens gives up with a clear error instead of retrying
/// forever.</summary>
public class ConnectTimeoutTests
{
    // A loopback port nothing listens on (bound, read, released).
    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        int port = ((IPEndPoint)socket.LocalEndpoint).Port;
        socket.Stop();
        return port;
    }

    [Fact]
    public async Task Connecting_to_no_cluster_fails_within_the_timeout_naming_the_gateway()
    {
        int port = FreePort();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            DistributedHosts.ConnectAsync([new IPEndPoint(IPAddress.Loopback, port)], connectTimeout: TimeSpan.FromSeconds(2)));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("No Orleans gateway answered", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"gave up after {clock.Elapsed}");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            DistributedHosts.ConnectAsync([port], connectTimeout: TimeSpan.Zero));
    }
}
