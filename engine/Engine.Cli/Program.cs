using System.CommandLine;

namespace Engine.Cli;

/// <summary>Entry point of the <c>engine</c> command.</summary>
public static class Program
{
    /// <summary>Builds the command tree. Each sub-command lives in its own file.</summary>
    public static RootCommand BuildRoot()
    {
        // The assembly is Engine.Cli (scripts and tests run Engine.Cli.dll); help and usage call the command `engine`.
        var root = new RootCommand("engine: embedded vector index engine with hard-negative mining built in") { HelpName = "engine" };
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(BuildCommand.Create());
        root.Subcommands.Add(SearchCommand.Create());
        root.Subcommands.Add(VerifyCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DataCommands.Create());
        root.Subcommands.Add(MineCommand.Create());
        root.Subcommands.Add(HubnessCommand.Create());
        root.Subcommands.Add(MultiVectorCommands.Create());
        root.Subcommands.Add(KnnGraphCommand.Create());
        root.Subcommands.Add(SelectCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(CutoffCommand.Create());
        root.Subcommands.Add(ClusterCommand.Create());
        return root;
    }

    /// <summary>Runs the command line; returns the process exit code.</summary>
    public static int Main(string[] args)
    {
        // The CLI deploys FASTER: new SPANN indexes log with FasterLog (WriteAheadLogs would also find it by name).
        Engine.Storage.Wal.WriteAheadLogs.Register(Engine.Faster.FasterWriteAheadLogProvider.Instance);
        try
        {
            // Errors surface here as one line (exit code 2) instead of System.CommandLine's stack-trace handler.
            return BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or InvalidOperationException or FormatException or UnauthorizedAccessException or NotSupportedException or TimeoutException)
        {
            Console.Error.WriteLine($"error: {Describe(ex)}");
            return 2;
        }
    }

    /// <summary>
    /// The one-line text of an error: an argument exception's message without the suffix .NET appends
    /// (" (Parameter 'x')" and, out of range, a second line "Actual value was v."), which names a C# parameter, not
    /// the option the user typed; the messages name the option or value themselves.
    /// </summary>
    internal static string Describe(Exception ex)
    {
        string message = Guard.MessageWithoutParameter(ex);
        // what ArgumentOutOfRangeException appends after the suffix: a line of its own
        int line = ex is ArgumentOutOfRangeException { ActualValue: not null } ? message.LastIndexOf(Environment.NewLine, StringComparison.Ordinal) : -1;
        return (line > 0 ? message[..line] : message).TrimEnd();
    }
}
