using System.CommandLine;

namespace Engine.Cli;

internal static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Builds an index on embedded seeded data, searches it and prints recall and speed.");
        cmd.SetAction(_ => { Console.WriteLine("demo: not yet wired"); return 0; });
        return cmd;
    }
}
