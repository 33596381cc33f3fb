using System.Diagnostics;

namespace Engine.Tests.Support;

/// <summary>
/// This test assembly started as a child process (<c>dotnet exec Engine.Tests.dll ARGS</c>) whose stdout lines are
/// collected, to be killed with SIGKILL at a chosen moment (crash tests).
/// </summary>
public sealed class KilledChild : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = new();
    private readonly ManualResetEventSlim _ready = new();
    private readonly System.Text.StringBuilder _err = new();

    public KilledChild(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(typeof(KilledChild).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_lines) _lines.Add(e.Data);
            if (e.Data == "READY") _ready.Set();
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_err) _err.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>What the child wrote to stderr so far.</summary>
    public string Errors { get { lock (_err) return _err.ToString(); } }

    /// <summary>Waits until the child printed READY; fails the test (killing it) after <paramref name="timeout"/>.</summary>
    public void WaitReady(TimeSpan timeout)
    {
        if (_ready.Wait(timeout)) return;
        _process.Kill();
        Assert.Fail($"the child did not become ready: {Errors}");
    }

    /// <summary>SIGKILLs the child (failing the test if it had already exited) and returns every line it printed.</summary>
    public string[] Kill()
    {
        Assert.False(_process.HasExited, $"the child exited early: {Errors}");
        _process.Kill(); // SIGKILL on Unix
        _process.WaitForExit();
        lock (_lines) return _lines.ToArray();
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.Dispose();
        _ready.Dispose();
    }
}
