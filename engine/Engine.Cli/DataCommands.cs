using System.CommandLine;

namespace Engine.Cli;

internal static class DataCommands
{
    public static Command Create()
    {
        var cmd = new Command("data", "Data sets: fetch, synth, gt.");
        return cmd;
    }
}
