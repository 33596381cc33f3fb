using System.Collections;
using System.Linq.Expressions;
using Microsoft.Extensions.VectorData.ProviderServices;
using Microsoft.Extensions.VectorData.ProviderServices.Filter;
using Filter = Engine.Collections.Filter;

namespace Engine.VectorData;

/// <summary>
/// Translates a LINQ filter (<c>r =&gt; r.Year &gt;= 2020 &amp;&amp; r.Tags.Contains("kv")</c>) into the collection's
/// <see cref="Filter"/>: ==, !=, &lt;, &lt;=, &gt;, &gt;=, &amp;&amp;, ||, !, a bool property on its own, <c>Contains</c>
/// on a tags property, <c>Contains</c> of a property in a constant list (IN), <c>tags.Any(t =&gt; list.Contains(t))</c>,
/// and the constant <c>true</c>. Anything else is a <see cref="NotSupportedException"/> naming the construct.
/// </summary>
internal sealed class EngineFilterTranslator : FilterTranslatorBase
{
    /// <summary>The collection filter (null: every record matches).</summary>
    public Filter? Translate(LambdaExpression filter, CollectionModel model)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Body is ConstantExpression { Value: true }) return null;
        var body = PreprocessFilter(filter, model, new FilterPreprocessingOptions { SupportsParameterization = false });
        return Translate(body);
    }

    private Filter Translate(Expression node) => node switch
    {
        BinaryExpression { NodeType: ExpressionType.AndAlso } and => Filter.And(Translate(and.Left), Translate(and.Right)),
        BinaryExpression { NodeType: ExpressionType.OrElse } or => Filter.Or(Translate(or.Left), Translate(or.Right)),
        UnaryExpression { NodeType: ExpressionType.Not } not => Filter.Not(Translate(not.Operand)),
        BinaryExpression
        {
            NodeType: ExpressionType.Equal or ExpressionType.NotEqual or ExpressionType.LessThan or ExpressionType.LessThanOrEqual
            or ExpressionType.GreaterThan or ExpressionType.GreaterThanOrEqual,
        } comparison => TranslateComparison(comparison),
        // A nullable lift around a whole condition (rare) is transparent.
        UnaryExpression { NodeType: ExpressionType.Convert } convert when Nullable.GetUnderlyingType(convert.Type) == convert.Operand.Type => Translate(convert.Operand),
        // r => r.IsActive
        _ when node.Type == typeof(bool) && Bind(node) is { } flag => Filter.Equal(flag.StorageName, true),
        ConstantExpression { Value: true } => Filter.And(),
        ConstantExpression { Value: false } => Filter.Or(),
        MethodCallExpression call => TranslateCall(call),
        _ => throw Unsupported(node),
    };

    private Filter TranslateComparison(BinaryExpression b)
    {
        PropertyModel property;
        object? constant;
        bool flipped = false;
        if (Bind(b.Left) is { } left && Constant(b.Right, out constant)) property = left;
        else if (Bind(b.Right) is { } right && Constant(b.Left, out constant)) { property = right; flipped = true; }
        else throw new NotSupportedException($"Filter comparison '{b}' is not supported: compare a data property with a constant.");
        if (constant is null && b.NodeType is not (ExpressionType.Equal or ExpressionType.NotEqual))
            throw new NotSupportedException($"Filter comparison '{b}' orders a property against null; only == null and != null are supported.");
        string field = property.StorageName;
        return (b.NodeType, flipped) switch
        {
            (ExpressionType.Equal, _) => Filter.Equal(field, constant),
            (ExpressionType.NotEqual, _) => Filter.NotEqual(field, constant),
            (ExpressionType.LessThan, false) or (ExpressionType.GreaterThan, true) => Filter.LessThan(field, constant!),
            (ExpressionType.LessThanOrEqual, false) or (ExpressionType.GreaterThanOrEqual, true) => Filter.LessOrEqual(field, constant!),
            (ExpressionType.GreaterThan, false) or (ExpressionType.LessThan, true) => Filter.GreaterThan(field, constant!),
            _ => Filter.GreaterOrEqual(field, constant!),
        };
    }

    private Filter TranslateCall(MethodCallExpression call)
    {
        if (TryMatchContains(call, out var source, out var item))
        {
            // r.Tags.Contains("x")
            if (Bind(source) is { } tags && Constant(item, out var tag))
            {
                // Only on tags: string.Contains (substring) must not turn into tag membership.
                if (tags.Type == typeof(string) || EngineModelBuilder.FieldTypeOf(tags.Type) != Engine.Collections.FieldType.Tags)
                    throw new NotSupportedException($"Filter '{call}' is not supported: Contains applies to tags (string lists), not to '{tags.ModelName}' of type {tags.Type.Name}.");
                if (tag is not string s) throw new NotSupportedException($"Filter '{call}': Contains on tags needs a non-null string constant.");
                return Filter.ContainsTag(tags.StorageName, s);
            }
            // new[] { "a", "b" }.Contains(r.Category)
            if (Bind(item) is { } property && ConstantList(source) is { } values)
                return Filter.In(property.StorageName, values.ToArray());
            throw new NotSupportedException($"Filter '{call}' is not supported: Contains must test a tags property for a constant, or a constant list for a property.");
        }
        // r.Tags.Any(t => list.Contains(t))
        if (call.Method.DeclaringType == typeof(Enumerable) && call.Method.Name == nameof(Enumerable.Any) && call.Arguments is [var anySource, LambdaExpression lambda]
            && Bind(anySource) is { } anyTags
            && lambda.Body is MethodCallExpression inner && TryMatchContains(inner, out var listSource, out var listItem)
            && listItem == lambda.Parameters[0] && ConstantList(listSource) is { } anyValues)
            return Filter.In(anyTags.StorageName, anyValues.ToArray());
        throw new NotSupportedException($"Filter method call '{call.Method.DeclaringType?.Name}.{call.Method.Name}' in '{call}' is not supported by Engine collections; " +
            "supported: ==, !=, <, <=, >, >=, &&, ||, !, bool properties, tags.Contains(constant), list.Contains(property), tags.Any(t => list.Contains(t)).");
    }

    private PropertyModel? Bind(Expression e)
    {
        // Nullable lifts around a property (r.NullableInt == 5 compiles to Convert(r.NullableInt) sometimes) are transparent.
        while (e is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } u) e = u.Operand;
        if (!TryBindProperty(e, out var property)) return null;
        if (property is KeyPropertyModel)
            throw new NotSupportedException($"Filters on the key property '{property.ModelName}' are not supported by Engine collections; get records by key with GetAsync(key).");
        if (property is VectorPropertyModel)
            throw new NotSupportedException($"Filters on the vector property '{property.ModelName}' are not supported.");
        return property;
    }

    private static bool Constant(Expression e, out object? value)
    {
        switch (e)
        {
            case ConstantExpression c:
                value = c.Value;
                return true;
            case UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } u when Constant(u.Operand, out var inner):
                // (long)5, (int?)5: evaluate the conversion.
                value = inner is null ? null : Expression.Lambda(Expression.Convert(Expression.Constant(inner, u.Operand.Type), u.Type)).Compile(preferInterpretation: true).DynamicInvoke();
                return true;
            case not null when e.NodeType != ExpressionType.Lambda && !UsesParameter.In(e):
                // A value that does not depend on the record (DateTimeOffset.UtcNow.AddDays(-7), a method of a captured
                // object): evaluated once, here, as other VectorData connectors do.
                try { value = Expression.Lambda<Func<object?>>(Expression.Convert(e, typeof(object))).Compile(preferInterpretation: true)(); }
                catch (Exception ex)
                {
                    throw new NotSupportedException($"Filter value '{e}' could not be evaluated: {ex.Message}", ex);
                }
                return true;
            default:
                value = null;
                return false;
        }
    }

    // Finds whether an expression reads a lambda parameter (the record, or an inner lambda's own parameter).
    private sealed class UsesParameter : ExpressionVisitor
    {
        private bool _found;

        public static bool In(Expression e)
        {
            var v = new UsesParameter();
            v.Visit(e);
            return v._found;
        }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            _found = true;
            return node;
        }
    }

    private static List<object>? ConstantList(Expression e)
    {
        if (e is NewArrayExpression array)
        {
            var items = new List<object>();
            foreach (var x in array.Expressions)
            {
                if (!Constant(x, out var v)) throw new NotSupportedException($"Filter list '{e}': every element must be a constant.");
                items.Add(v ?? throw new NotSupportedException($"Filter list '{e}' holds null; IN takes non-null values."));
            }
            return items;
        }
        while (e is UnaryExpression { NodeType: ExpressionType.Convert } u) e = u.Operand;
        if (e is ConstantExpression { Value: IEnumerable list and not string })
            return list.Cast<object?>().Select(v => v ?? throw new NotSupportedException("A filter list holds null; IN takes non-null values.")).ToList();
        // C# 14 binds array.Contains(x) to MemoryExtensions over an implicit span conversion.
        if (e is MethodCallExpression { Method.Name: "op_Implicit", Arguments: [var spanSource] }) return ConstantList(spanSource);
        return null;
    }

    private static NotSupportedException Unsupported(Expression node) =>
        new($"Filter expression '{node}' (node type {node.NodeType}) is not supported by Engine collections; " +
            "supported: ==, !=, <, <=, >, >=, &&, ||, !, bool properties, tags.Contains(constant), list.Contains(property), tags.Any(t => list.Contains(t)).");
}
