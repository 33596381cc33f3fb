using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>
/// Whether the CLI talks to a person at a terminal (Spectre progress bars and tables) or to a pipe, a file or CI
/// (plain lines, no escape codes).
/// </summary>
internal static class Terminal
{
    /// <summary>True when stdout and stderr are terminals, <c>CI</c> is unset and <c>TERM</c> is not <c>dumb</c>.</summary>
    public static bool IsInteractive =>
        Decide(Console.IsOutputRedirected, Console.IsErrorRedirected, Environment.GetEnvironmentVariable("CI"), Environment.GetEnvironmentVariable("TERM"));

    /// <summary>The decision of <see cref="IsInteractive"/> on given inputs.</summary>
    public static bool Decide(bool stdoutRedirected, bool stderrRedirected, string? ci, string? term) =>
        !stdoutRedirected && !stderrRedirected && string.IsNullOrEmpty(ci) && !string.Equals(term, "dumb", StringComparison.Ordinal);

    /// <summary>A Spectre console that writes to stderr, so stdout keeps only results (JSON rows, tables).</summary>
    public static IAnsiConsole Stderr { get; } = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
}

/// <summary>
/// Runs the long steps of a command (ground truth, train, add, build, sweep, mine…) with progress: a Spectre
/// progress bar on a terminal, otherwise a start line, a line at most every <see cref="PlainInterval"/> with the
/// fraction done, and an end line with the seconds taken.
/// </summary>
internal sealed class Steps
{
    /// <summary>Seconds between two plain progress lines of one step.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    private readonly TextWriter _log;
    private readonly IAnsiConsole? _console;

    private Steps(TextWriter log, IAnsiConsole? console)
    {
        _log = log;
        _console = console;
    }

    /// <summary>Plain lines to <paramref name="log"/> (or nothing for <see cref="TextWriter.Null"/>).</summary>
    public static Steps Plain(TextWriter log) => new(log, null);

    /// <summary>Progress bars on a terminal (<see cref="Terminal.IsInteractive"/>), plain lines to <paramref name="log"/> otherwise.</summary>
    public static Steps ForConsole(TextWriter log) =>
        new(log, log != TextWriter.Null && Terminal.IsInteractive ? Terminal.Stderr : null);

    /// <summary>True when steps draw progress bars.</summary>
    public bool Interactive => _console is not null;

    /// <summary>Runs <paramref name="work"/>, which may report its stages and how far they are through its argument.</summary>
    public T Run<T>(string label, Func<IProgress<BuildProgress>, T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return _console is null ? RunPlain(label, work) : RunBar(_console, label, work);
    }

    /// <summary>Runs <paramref name="work"/> as a step (see <see cref="Run{T}"/>).</summary>
    public void Run(string label, Action<IProgress<BuildProgress>> work) => Run(label, p => { work(p); return true; });

    /// <summary>A report's text: the stage unless it repeats the label, then done/total.</summary>
    private static string Describe(string label, BuildProgress p)
    {
        string stage = string.IsNullOrEmpty(p.Stage) || label.StartsWith(p.Stage, StringComparison.Ordinal) ? "" : p.Stage + " ";
        return p.Total > 0 ? string.Create(CultureInfo.InvariantCulture, $"{stage}{p.Done:N0}/{p.Total:N0}") : stage.TrimEnd();
    }

    private T RunPlain<T>(string label, Func<IProgress<BuildProgress>, T> work)
    {
        var sw = Stopwatch.StartNew();
        var last = TimeSpan.Zero;
        var gate = new Lock();
        _log.WriteLine($"{label} ...");
        var result = work(new SyncProgress<BuildProgress>(p =>
        {
            lock (gate)
            {
                if (sw.Elapsed - last < PlainInterval) return;
                last = sw.Elapsed;
                _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: {Describe(label, p)} ({p.Fraction * 100:F0}%, {sw.Elapsed.TotalSeconds:F1} s)"));
            }
        }));
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: done in {sw.Elapsed.TotalSeconds:F2} s"));
        return result;
    }

    private static T RunBar<T>(IAnsiConsole console, string label, Func<IProgress<BuildProgress>, T> work)
    {
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                task.IsIndeterminate = true;
                result = work(new SyncProgress<BuildProgress>(p =>
                {
                    string text = Describe(label, p);
                    task.Description = Markup.Escape(text.Length == 0 ? label : $"{label}: {text}");
                    task.IsIndeterminate = p.Total <= 0;
                    task.Value = p.Fraction;
                }));
                task.Description = Markup.Escape(label);
                task.IsIndeterminate = false;
                task.Value = 1.0;
                task.StopTask();
            });
        return result;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (<see cref="Progress{T}"/> posts to the pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
