namespace Engine.Collections;

/// <summary>
/// A metadata filter over indexed data fields: equality, ranges, membership, tag containment, AND / OR / NOT.
/// Compiled against the collection's in-memory columns into an id pre-filter the index scan uses.
/// </summary>
public abstract record Filter
{
    private protected Filter() { }

    /// <summary>field == value (null matches records without a value).</summary>
    public static Filter Equal(string field, object? value) => new CompareFilter(field, CompareOp.Equal, value);
    /// <summary>field != value (records without a value match unless value is null).</summary>
    public static Filter NotEqual(string field, object? value) => new NotFilter(Equal(field, value));
    /// <summary>field &lt; value.</summary>
    public static Filter LessThan(string field, object value) => new CompareFilter(field, CompareOp.Less, value);
    /// <summary>field &lt;= value.</summary>
    public static Filter LessOrEqual(string field, object value) => new CompareFilter(field, CompareOp.LessOrEqual, value);
    /// <summary>field &gt; value.</summary>
    public static Filter GreaterThan(string field, object value) => new CompareFilter(field, CompareOp.Greater, value);
    /// <summary>field &gt;= value.</summary>
    public static Filter GreaterOrEqual(string field, object value) => new CompareFilter(field, CompareOp.GreaterOrEqual, value);
    /// <summary>lo &lt;= field &lt;= hi.</summary>
    public static Filter Between(string field, object lo, object hi) => And(GreaterOrEqual(field, lo), LessOrEqual(field, hi));
    /// <summary>The field's value is one of <paramref name="values"/>; on a tags field, the record has any of them.</summary>
    public static Filter In(string field, params object[] values) => new InFilter(field, values);
    /// <summary>A tags field contains <paramref name="tag"/>.</summary>
    public static Filter ContainsTag(string field, string tag) => new InFilter(field, [tag]);
    /// <summary>All of the filters match.</summary>
    public static Filter And(params Filter[] filters) => new AndFilter(filters);
    /// <summary>Any of the filters matches.</summary>
    public static Filter Or(params Filter[] filters) => new OrFilter(filters);
    /// <summary>The filter does not match.</summary>
    public static Filter Not(Filter filter) => new NotFilter(filter);
}

/// <summary>The comparison of a <see cref="CompareFilter"/>.</summary>
public enum CompareOp
{
    /// <summary>==</summary>
    Equal,
    /// <summary>&lt;</summary>
    Less,
    /// <summary>&lt;=</summary>
    LessOrEqual,
    /// <summary>&gt;</summary>
    Greater,
    /// <summary>&gt;=</summary>
    GreaterOrEqual,
}

/// <summary>field op value.</summary>
/// <param name="Field">The indexed data field.</param>
/// <param name="Op">The comparison.</param>
/// <param name="Value">The constant compared with.</param>
public sealed record CompareFilter(string Field, CompareOp Op, object? Value) : Filter;

/// <summary>The field's value is one of <paramref name="Values"/> (tags: any tag is).</summary>
/// <param name="Field">The indexed data field.</param>
/// <param name="Values">Candidate values.</param>
public sealed record InFilter(string Field, IReadOnlyList<object> Values) : Filter;

/// <summary>Every operand matches.</summary>
/// <param name="Operands">The operands (none = matches everything).</param>
public sealed record AndFilter(IReadOnlyList<Filter> Operands) : Filter;

/// <summary>Any operand matches.</summary>
/// <param name="Operands">The operands (none = matches nothing).</param>
public sealed record OrFilter(IReadOnlyList<Filter> Operands) : Filter;

/// <summary>The operand does not match.</summary>
/// <param name="Operand">The negated filter.</param>
public sealed record NotFilter(Filter Operand) : Filter;
