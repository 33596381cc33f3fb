namespace Engine.Tests.Support;

/// <summary>A fresh directory per test, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "engine-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>
    /// Copies a directory tree, reading files that another process or handle still has open (a crash image). A crash
    /// freezes the directory at one instant; a copy does not, so background clean-up (FASTER deletes outdated commit
    /// records some time after a commit) can remove a file between the listing and the copy, or add one. The copy is
    /// retried until one pass saw the same files before and after and none vanished: an image of one moment.
    /// </summary>
    public static void CopyTree(string from, string to)
    {
        for (int attempt = 1; ; attempt++)
        {
            if (Directory.Exists(to)) Directory.Delete(to, recursive: true);
            Directory.CreateDirectory(to);
            var before = Listing(from);
            bool vanished = false;
            foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
            foreach (var f in before)
            {
                // An open collection's lock file is held exclusively (an OS lock; .NET readers are refused) and holds
                // nothing: the image leaves it out, as a reopen recreates it.
                if (System.IO.Path.GetFileName(f) == Engine.Collections.CollectionDirectoryLock.FileName) continue;
                try
                {
                    using var src = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    using var dst = System.IO.File.Create(f.Replace(from, to));
                    src.CopyTo(dst);
                }
                catch (FileNotFoundException) { vanished = true; }
                catch (DirectoryNotFoundException) { vanished = true; }
            }
            if (!vanished && before.SequenceEqual(Listing(from))) return;
            if (attempt == 50) throw new IOException($"'{from}' kept changing while it was copied (50 attempts).");
            Thread.Sleep(20);
        }
    }

    private static string[] Listing(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
