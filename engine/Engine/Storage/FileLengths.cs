namespace Engine.Storage;

/// <summary>
/// File sizes that follow symbolic links. <see cref="FileInfo.Length"/> of a link is the length of the link itself
/// (its target path), not of the file it points to; data sets and indexes are symlinked all the time (shared
/// caches, subsets), so every size the engine checks or reports comes from here or from an open stream.
/// </summary>
public static class FileLengths
{
    /// <summary>Length in bytes of the file at <paramref name="path"/>, following symbolic links to the final target.</summary>
    /// <exception cref="FileNotFoundException">The file (or a link's target) does not exist.</exception>
    public static long Of(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return RandomAccess.GetLength(handle);
    }

    /// <summary>Total length of the files under <paramref name="dir"/> (recursively), following links to files; 0
    /// when the directory does not exist. A dangling link counts 0.</summary>
    public static long OfDirectory(string dir)
    {
        if (!Directory.Exists(dir)) return 0;
        long total = 0;
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
        {
            try { total += Of(f); }
            catch (FileNotFoundException) { } // a dangling link or a file deleted meanwhile holds no bytes
            catch (DirectoryNotFoundException) { }
        }
        return total;
    }
}
