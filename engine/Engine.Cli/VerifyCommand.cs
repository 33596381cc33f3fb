using System.CommandLine;
using Engine.Index;

namespace Engine.Cli;

/// <summary>
/// <c>engine verify</c>: checks an index in depth (<see cref="IVerifiableIndex.Verify"/>): every checksum, posting block,
/// list, id and vector. Exit code 0 when clean, 1 with the problems listed (file, offset, what), 2 on a usage error.
/// </summary>
internal static class VerifyCommand
{
    /// <summary>Exit code when the index has problems.</summary>
    public const int Corrupt = 1;

    public static Command Create()
    {
        var dir = new Option<string?>("--dir") { Description = "Index directory written by 'engine build' (SPANN directory or one holding index.bin)." };
        var file = new Option<string?>("--index") { Description = "An index file (Flat, IVF) or a SPANN directory." };
        var cmd = new Command("verify", "Checks an index in depth (checksums, posting blocks, lists, ids, finite vectors); exit 0 when clean, 1 with the problems listed.") { dir, file };
        cmd.SetAction(r => Run(r.GetValue(dir), r.GetValue(file), Console.Out));
        return cmd;
    }

    /// <summary>Verifies the index given by exactly one of <paramref name="dir"/> and <paramref name="file"/>; returns the exit code.</summary>
    public static int Run(string? dir, string? file, TextWriter output)
    {
        if ((dir is null) == (file is null)) throw new ArgumentException("give exactly one of --dir DIR and --index FILE.");
        string path;
        if (dir is not null)
        {
            string full = Path.GetFullPath(dir);
            if (!Directory.Exists(full)) throw new ArgumentException($"--dir '{full}' does not exist.");
            path = File.Exists(Path.Combine(full, Index.Spann.SpannIndex.MetaFileName)) ? full
                : File.Exists(Path.Combine(full, IndexDirectory.IndexFileName)) ? Path.Combine(full, IndexDirectory.IndexFileName)
                : throw new ArgumentException($"--dir '{full}' holds no index (neither {Index.Spann.SpannIndex.MetaFileName} nor {IndexDirectory.IndexFileName}).");
        }
        else
        {
            path = Path.GetFullPath(file!);
            if (!File.Exists(path) && !Directory.Exists(path)) throw new ArgumentException($"--index '{path}' does not exist.");
        }
        var report = IndexVerifier.Verify(path);
        if (report.IsClean)
        {
            output.WriteLine($"verify: OK: '{report.Subject}': {report.PartsChecked} lists/postings, {report.VectorsChecked} vectors checked");
            return 0;
        }
        output.WriteLine($"verify: {report.ProblemCount} problem{(report.ProblemCount == 1 ? "" : "s")} in '{report.Subject}':");
        foreach (var p in report.Problems) output.WriteLine("  " + p);
        if (report.ProblemCount > report.Problems.Count) output.WriteLine($"  ... and {report.ProblemCount - report.Problems.Count} more");
        return Corrupt;
    }
}
