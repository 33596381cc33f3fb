namespace Engine.Index;

/// <summary>Opens an index from disk and verifies it in depth (what <c>engine verify</c> runs).</summary>
public static class IndexVerifier
{
    /// <summary>
    /// Loads the index at <paramref name="path"/> (an index file or a SPANN directory, as <see cref="IndexFactory.Load"/>)
    /// and runs <see cref="IVerifiableIndex.Verify"/>. Damage that stops the load (a checksum, a truncation, an
    /// impossible table) is reported as the one problem; a SPANN directory is opened as a search would open it (its
    /// log is replayed).
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing to verify at <paramref name="path"/>.</exception>
    public static VerifyReport Verify(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full) && !Directory.Exists(full)) throw new FileNotFoundException($"No index at '{full}'.", full);
        IVectorIndex index;
        try
        {
            index = IndexFactory.Load(full, mapped: true);
        }
        catch (CorruptIndexException e)
        {
            var failed = new VerifyReport(full);
            failed.Add(e);
            return failed;
        }
        catch (IndexFormatException e)
        {
            var failed = new VerifyReport(full);
            failed.Add(e.FilePath, -1, e.Message);
            return failed;
        }
        using (index)
        {
            if (index is not IVerifiableIndex verifiable)
                throw new NotSupportedException($"'{index.Description}' indexes cannot be verified.");
            return verifiable.Verify();
        }
    }
}
