using System.CommandLine;

namespace Engine.Cli;

internal static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Measures recall and QPS of an index spec on a data-set directory.");
        cmd.SetAction(_ => { Console.WriteLine("bench: not yet wired"); return 0; });
        return cmd;
    }
}
