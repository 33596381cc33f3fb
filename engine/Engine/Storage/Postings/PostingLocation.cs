namespace Engine.Storage.Postings;

/// <summary>Where a posting block lives: a page-aligned byte offset and its length in pages.</summary>
/// <param name="Offset">Byte offset of the block (a multiple of the store's page size).</param>
/// <param name="Pages">Length in pages; 0 marks "no block" (an empty posting).</param>
public readonly record struct PostingLocation(long Offset, int Pages)
{
    /// <summary>True when no block is stored.</summary>
    public bool IsEmpty => Pages == 0;

    /// <summary>
    /// The CRC32C the block's header carries (set by <see cref="PostingStore.Write"/>; null when unknown, e.g. read
    /// from a table written before checksums were recorded). A read checks it, so a table entry that points at another
    /// block of the same posting (a stale one) is reported instead of served.
    /// </summary>
    public uint? Checksum { get; init; }
}
