namespace Engine.MultiVector;

/// <summary>
/// A batch of multi-vector items (ColBERT-style token sets): item i is a set of <see cref="TokenCount"/>(i) token
/// vectors of one shared dimension d. The tokens of all items lie back to back in one row-major array, item after item.
/// Immutable once built; every constructor validates the whole batch.
/// </summary>
public sealed class MultiVectorSet
{
    private readonly float[] _tokens;
    private readonly int[] _offsets;

    /// <summary>
    /// Builds a batch from tokens laid out item after item (Σ counts × d floats) and each item's token count.
    /// </summary>
    /// <param name="dimension">Token dimension d (&gt; 0).</param>
    /// <param name="tokens">All tokens, row-major, item after item.</param>
    /// <param name="tokenCounts">Tokens per item (each ≥ 1).</param>
    /// <exception cref="ArgumentException">An item without tokens, counts that do not cover <paramref name="tokens"/>
    /// exactly, or a non-finite / too large token (the message names the item and token).</exception>
    public MultiVectorSet(int dimension, float[] tokens, ReadOnlySpan<int> tokenCounts)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Token dimension must be positive.");
        var offsets = new int[tokenCounts.Length + 1];
        long total = 0;
        for (int i = 0; i < tokenCounts.Length; i++)
        {
            if (tokenCounts[i] <= 0)
                throw new ArgumentException($"Item {i} has {tokenCounts[i]} tokens; every multi-vector item needs at least one token (an empty token set has no Chamfer score).", nameof(tokenCounts));
            total += tokenCounts[i];
            if (total * dimension > Array.MaxLength)
                throw new ArgumentException($"The batch holds more than {Array.MaxLength} token values; split it.", nameof(tokenCounts));
            offsets[i + 1] = (int)total;
        }
        if (total * dimension != tokens.Length)
            throw new ArgumentException($"The token counts cover {total} tokens × d={dimension} = {total * dimension} floats, but tokens holds {tokens.Length}.", nameof(tokens));
        CheckFinite(tokens, dimension, offsets);
        Dimension = dimension;
        _tokens = tokens;
        _offsets = offsets;
    }

    /// <summary>
    /// Builds a batch from jagged items: <c>items[i][j]</c> is token j of item i. All tokens must have the same length.
    /// </summary>
    /// <remarks>No items give an empty batch; no token tells its dimension, so its <see cref="Dimension"/> is a
    /// placeholder (1). <c>MultiVectorIndex</c> accepts an empty batch whatever its dimension: adding it adds nothing,
    /// searching it finds nothing.</remarks>
    /// <exception cref="ArgumentException">No items' dimension can be found, an empty item, mixed token dimensions
    /// (the message names the item, the token and both lengths), or a non-finite value.</exception>
    public static MultiVectorSet FromItems(IReadOnlyList<float[][]> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        int d = -1;
        long total = 0;
        var counts = new int[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i] ?? throw new ArgumentException($"Item {i} is null.", nameof(items));
            if (item.Length == 0)
                throw new ArgumentException($"Item {i} has no tokens; every multi-vector item needs at least one token.", nameof(items));
            for (int j = 0; j < item.Length; j++)
            {
                int len = item[j]?.Length ?? throw new ArgumentException($"Item {i} token {j} is null.", nameof(items));
                if (d < 0)
                {
                    if (len == 0) throw new ArgumentException($"Item {i} token {j} has length 0; tokens need a positive dimension.", nameof(items));
                    d = len;
                }
                else if (len != d)
                    throw new ArgumentException($"Mixed token dimensions: item {i} token {j} has length {len}, but the first token has d={d}.", nameof(items));
            }
            counts[i] = item.Length;
            total += item.Length;
        }
        if (d < 0) return new MultiVectorSet(1, [], []);
        if (total * d > Array.MaxLength) throw new ArgumentException($"The items hold more than {Array.MaxLength} token values; split them.", nameof(items));
        var tokens = new float[total * d];
        int at = 0;
        foreach (var item in items)
            foreach (var t in item) { t.CopyTo(tokens, at); at += d; }
        return new MultiVectorSet(d, tokens, counts);
    }

    /// <summary>Token dimension d.</summary>
    public int Dimension { get; }

    /// <summary>Number of items.</summary>
    public int Count => _offsets.Length - 1;

    /// <summary>Tokens over all items.</summary>
    public int TotalTokens => _offsets[^1];

    /// <summary>All tokens, item after item (TotalTokens × d).</summary>
    public ReadOnlySpan<float> Tokens => _tokens;

    /// <summary>Tokens of item <paramref name="item"/>.</summary>
    public int TokenCount(int item) => _offsets[item + 1] - _offsets[item];

    /// <summary>First token (row) of item <paramref name="item"/> in <see cref="Tokens"/>.</summary>
    public int TokenOffset(int item) => _offsets[item];

    /// <summary>The tokens of item <paramref name="item"/> (TokenCount × d, row-major).</summary>
    public ReadOnlySpan<float> Item(int item) =>
        _tokens.AsSpan(_offsets[item] * Dimension, (_offsets[item + 1] - _offsets[item]) * Dimension);

    /// <summary>The items <paramref name="start"/>..start+count−1 as a new batch (copies their tokens).</summary>
    public MultiVectorSet Slice(int start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (start + count > Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"Items {start}..{start + count - 1} exceed the batch of {Count}.");
        var counts = new int[count];
        for (int i = 0; i < count; i++) counts[i] = TokenCount(start + i);
        int from = _offsets[start] * Dimension, to = _offsets[start + count] * Dimension;
        return new MultiVectorSet(Dimension, _tokens[from..to], counts);
    }

    private static void CheckFinite(float[] tokens, int d, int[] offsets)
    {
        try { Guard.Finite(tokens, d, nameof(tokens)); }
        catch (ArgumentException e)
        {
            // Name the item as well as the token row.
            for (int i = 0; i + 1 < offsets.Length; i++)
            {
                var item = tokens.AsSpan(offsets[i] * d, (offsets[i + 1] - offsets[i]) * d);
                try { Guard.Finite(item, d, "tokens"); }
                catch (ArgumentException inner) { throw new ArgumentException($"Item {i}: {Guard.MessageWithoutParameter(inner)}", nameof(tokens), e); }
            }
            throw;
        }
    }
}
