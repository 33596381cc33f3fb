using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// Makes a build visible atomically. <c>engine build</c> writes the index into a temporary sibling directory
/// <c>DIR.building-PID-RANDOM</c>; when it is complete and durable, <see cref="Publish"/> renames it to <c>DIR</c> (one
/// rename when <c>DIR</c> does not exist; when <c>DIR</c> is an existing directory without an index, its files are moved
/// in one by one with the file that marks an index, <c>spann.meta</c> or <c>index.bin</c>, moved last). A build that
/// is killed therefore leaves either no index under <c>DIR</c> or the complete one, plus at most a stale
/// <c>.building-</c> directory, which the next build into <c>DIR</c> removes (or refuses to touch, naming it, while
/// the process that owns it still runs).
/// </summary>
internal static partial class IndexPublisher
{
    private const string Infix = ".building-";

    /// <summary>Creates a fresh, empty build directory beside <paramref name="dir"/> (parents created as needed).</summary>
    public static string NewBuildDirectory(string dir)
    {
        string work = dir + Infix + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(work);
        return work;
    }

    /// <summary>
    /// Deletes build directories of <paramref name="dir"/> left by builds whose process no longer runs.
    /// </summary>
    /// <exception cref="IOException">A build into <paramref name="dir"/> is still running (names its directory and process).</exception>
    public static void RemoveStaleBuilds(string dir)
    {
        string? parent = Path.GetDirectoryName(dir);
        if (parent is null || !Directory.Exists(parent)) return;
        foreach (var stale in Directory.GetDirectories(parent, Path.GetFileName(dir) + Infix + "*"))
        {
            string tail = Path.GetFileName(stale)[(Path.GetFileName(dir).Length + Infix.Length)..];
            if (TryParseOwner(tail, out int pid) && IsRunning(pid))
                throw new IOException($"another build into '{dir}' is still running (process {pid}, working in '{stale}'); wait for it to finish, or stop it and run the build again.");
            Directory.Delete(stale, recursive: true);
        }
    }

    /// <summary>The process id that starts <paramref name="tail"/> (<c>PID-…</c>, how work directories are named).</summary>
    internal static bool TryParseOwner(ReadOnlySpan<char> tail, out int pid)
    {
        int dash = tail.IndexOf('-');
        pid = 0;
        return dash > 0 && int.TryParse(tail[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out pid);
    }

    /// <summary>Whether another process with id <paramref name="pid"/> runs (false for this one).</summary>
    internal static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Moves the finished index in <paramref name="work"/> to <paramref name="dir"/>; see the class remarks.</summary>
    /// <exception cref="IOException">An entry of the build already exists in <paramref name="dir"/> (nothing is moved).</exception>
    public static void Publish(string work, string dir)
    {
        SyncDirectory(work);
        string? parent = Path.GetDirectoryName(dir);
        if (!Directory.Exists(dir))
        {
            Directory.Move(work, dir);
            if (parent is not null) SyncDirectory(parent);
            return;
        }
        var entries = Directory.GetFileSystemEntries(work).Select(Path.GetFileName).OfType<string>()
            .OrderBy(name => name is SpannIndex.MetaFileName or IndexDirectory.IndexFileName ? 1 : 0).ThenBy(name => name, StringComparer.Ordinal).ToList();
        foreach (var name in entries)
        {
            string target = Path.Combine(dir, name);
            if (File.Exists(target) || Directory.Exists(target))
                throw new IOException($"cannot place the index in '{dir}': it already holds '{name}'; choose an empty directory (nothing was changed).");
        }
        foreach (var name in entries)
        {
            string from = Path.Combine(work, name), to = Path.Combine(dir, name);
            if (Directory.Exists(from)) Directory.Move(from, to);
            else File.Move(from, to);
            if (name is SpannIndex.MetaFileName or IndexDirectory.IndexFileName) SyncDirectory(dir); // the rest first, the marker last
        }
        SyncDirectory(dir);
        Directory.Delete(work);
    }

    /// <summary>Deletes <paramref name="path"/> recursively, ignoring errors (cleanup after a failed build).</summary>
    public static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>fsyncs a directory so the names created or renamed in it are durable (Linux and macOS; no-op elsewhere).</summary>
    private static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = Open(path, 0); // O_RDONLY
        if (fd < 0) throw new IOException($"cannot open directory '{path}' to make it durable (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"fsync of directory '{path}' failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally { _ = Close(fd); }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
