using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Engine.Tests.Architecture;

/// <summary>
/// The layering rules of docs/architecture.md, checked on the assemblies and the source tree: kernels know nothing of
/// indexes; indexes reach files only through the storage abstractions; mining depends only on the index contract;
/// ILGPU, FASTER, Orleans and VectorData live in their own assemblies; plotting (ScottPlot/SkiaSharp) and HDF5 (PureHDF) in Engine.Bench.
/// </summary>
public class LayeringTests
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return d.FullName;
        throw new InvalidOperationException("Engine.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Which projects may reference a package family (by package id prefix).</summary>
    public static TheoryData<string, string> PackageHomes() => new()
    {
        { "Microsoft.FASTER", "Engine.Faster" },
        { "ILGPU", "Engine.Gpu" },
        { "Microsoft.Orleans", "Engine.Distributed" },
        { "Microsoft.Extensions.VectorData", "Engine.VectorData" },
        { "Microsoft.Extensions.AI", "Engine.VectorData" },
        { "ScottPlot", "Engine.Bench" },
        { "SkiaSharp", "Engine.Bench" },
        { "PureHDF", "Engine.Bench" },
        { "YamlDotNet", "Engine.Bench" },
        { "Parquet.Net", "Engine.Parquet" },
    };

    [Theory]
    [MemberData(nameof(PackageHomes))]
    public void HeavyPackages_AreReferencedOnlyByTheirOwnAssembly(string packagePrefix, string home)
    {
        var offenders = new List<string>();
        foreach (var csproj in Directory.EnumerateFiles(Path.Combine(Root, "engine"), "*.csproj", SearchOption.AllDirectories)
                     .Concat(Directory.EnumerateFiles(Path.Combine(Root, "bindings"), "*.csproj", SearchOption.AllDirectories)))
        {
            string name = Path.GetFileNameWithoutExtension(csproj);
            if (name == home) continue;
            var refs = XDocument.Load(csproj).Descendants("PackageReference")
                .Select(e => (string?)e.Attribute("Include") ?? "")
                .Where(p => p.StartsWith(packagePrefix, StringComparison.OrdinalIgnoreCase));
            offenders.AddRange(refs.Select(r => $"{name} references {r}"));
        }
        Assert.True(offenders.Count == 0, string.Join("; ", offenders));
    }

    [Fact]
    public void CoreAssembly_ReferencesNoHeavyPackage()
    {
        var refs = typeof(Engine.Index.Flat.FlatIndex).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToArray();
        foreach (var forbidden in new[] { "FASTER", "ILGPU", "Orleans", "VectorData", "Engine.Faster", "Engine.Gpu", "ScottPlot", "SkiaSharp", "PureHDF", "YamlDotNet", "Spectre", "Engine.Bench", "Engine.Collections", "Engine.Distributed", "Parquet", "Engine.Parquet" })
            Assert.DoesNotContain(refs, r => r.Contains(forbidden, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void ParquetAssembly_SitsOnTheCoreOnly()
    {
        // Parquet output (Parquet.Net) is its own assembly over the core's training layouts; no other engine layer.
        var refs = typeof(Engine.Parquet.TrainingParquetWriter).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToArray();
        Assert.Contains("Engine", refs);
        Assert.Contains("Parquet", refs);
        Assert.DoesNotContain(refs, r => r.StartsWith("Engine.", StringComparison.Ordinal));
    }

    [Fact]
    public void CollectionsAssembly_KnowsNothingOfTheVectorDataConnector()
    {
        // The record store is the engine's own API; the Microsoft.Extensions.VectorData connector sits on top of it.
        var refs = typeof(Engine.Collections.RecordCollection<>).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToArray();
        Assert.DoesNotContain(refs, r => r.Contains("VectorData", StringComparison.OrdinalIgnoreCase) || r.StartsWith("Microsoft.Extensions.AI", StringComparison.OrdinalIgnoreCase));
        var connector = typeof(Engine.VectorData.EngineVectorStore).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToArray();
        Assert.Contains("Engine.Collections", connector);
        Assert.Contains("Microsoft.Extensions.VectorData.Abstractions", connector);
        Assert.DoesNotContain(connector, r => r.Contains("FASTER", StringComparison.OrdinalIgnoreCase) || r.Contains("ILGPU", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Source folders of the core assembly and the namespaces (regex on the text) they must not use.</summary>
    public static TheoryData<string, string, string> SourceRules() => new()
    {
        { "engine/Engine/Distance", @"\bEngine\.(Index|Mining|Storage|Clustering|Quantization)\b", "kernels know nothing of indexes, mining or storage" },
        { "engine/Engine/Quantization", @"\bEngine\.(Index|Mining|Storage)\b", "codecs know nothing of indexes, mining or storage" },
        { "engine/Engine/Clustering", @"\bEngine\.(Index|Mining|Storage)\b", "clustering knows nothing of indexes, mining or storage" },
        { "engine/Engine/Storage", @"\bEngine\.(Index|Mining)\b", "storage knows nothing of indexes or mining" },
        { "engine/Engine/MultiVector", @"\bEngine\.(Index|Mining|Storage)\b", "multi-vector encoding knows nothing of indexes, mining or storage" },
        { "engine/Engine/Mining", @"\bEngine\.Index\.(Flat|Ivf|Spann)\b|\b(FlatIndex|IvfIndex|SpannIndex)\b", "mining depends only on the index contract" },
        { "engine/Engine/Index", IndexFileIo, "indexes reach files only through the storage abstractions (Engine.Storage: IIndexStorage, IndexFileWriter/Reader, devices)" },
    };

    /// <summary>
    /// File-system access in index code: opening, creating, deleting, moving, copying or probing files and
    /// directories, streams and readers/writers over them, devices over files, mappings, positional I/O.
    /// </summary>
    private const string IndexFileIo =
        @"\bFileStream\b|\bFile\.\w+|\bDirectory\.\w+|\b\w*Stream(Writer|Reader)?\b|\bBinary(Writer|Reader)\b|\bFileDevice\b|" +
        @"\bMemoryMappedFile\b|\bRandomAccess\.|\bFile(Info|SystemInfo)\b|\bDirectoryInfo\b";

    /// <summary>
    /// The only file-system calls index code may make, each with its reason: <c>IndexFactory.Load</c> and
    /// <c>IndexVerifier.Verify</c> take a path from the caller and look at what is there (a SPANN directory or an index
    /// file) to pick the loader; they only probe for existence, and the loader then goes through the storage layer.
    /// </summary>
    private static readonly (string File, Regex Allowed)[] IndexFileIoAllowed =
    [
        ("engine/Engine/Index/Factory/IndexFactory.cs", new Regex(@"\b(File|Directory)\.Exists\b")),
        ("engine/Engine/Index/Factory/IndexVerifier.cs", new Regex(@"\b(File|Directory)\.Exists\b")),
    ];

    // A line of an allow-listed file passes when what is left after removing its allowed calls holds no file I/O.
    private static bool AllowedIndexFileIo(string relative, string code) =>
        IndexFileIoAllowed.Any(a => a.File == relative.Replace('\\', '/') && !Regex.IsMatch(a.Allowed.Replace(code, ""), IndexFileIo));

    [Theory]
    [MemberData(nameof(SourceRules))]
    public void SourceFolders_KeepTheirLayer(string folder, string forbiddenPattern, string rule)
    {
        var regex = new Regex(forbiddenPattern);
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, folder), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")) continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string code = StripComment(lines[i]);
                if (regex.IsMatch(code) && !(folder == "engine/Engine/Index" && AllowedIndexFileIo(Path.GetRelativePath(Root, file), code)))
                    offenders.Add($"{Path.GetRelativePath(Root, file)}:{i + 1}: {code.Trim()}");
            }
        }
        Assert.True(offenders.Count == 0, $"{rule}:\n" + string.Join("\n", offenders));
    }

    /// <summary>Per-thread scratch in index code that bypasses the shared pool (Engine.Runtime.ScratchPool).</summary>
    private const string PrivateScratch = @"\[ThreadStatic\]|\bThreadLocal<|\bConcurrentBag<";

    /// <summary>
    /// Index search scratch goes through the one shared <c>ScratchPool</c>, rented per call: a thread-static buffer
    /// would be overwritten by a filter that searches the same index again on the same thread, and a pool of an
    /// index's own would be a second mechanism to keep right.
    /// </summary>
    [Fact]
    public void IndexScratch_GoesThroughTheSharedPool()
    {
        var regex = new Regex(PrivateScratch);
        Assert.Matches(regex, "[ThreadStatic] private static float[]? t_a;");
        Assert.Matches(regex, "private readonly ConcurrentBag<IvfScratch> _pool = new();");
        Assert.Matches(regex, "static readonly ThreadLocal<Scratch> s = new(() => new());");
        Assert.DoesNotMatch(regex, "private readonly ScratchPool<IvfScratch> _scratchPool;");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "engine", "Engine", "Index"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")) continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
                if (regex.IsMatch(StripComment(lines[i])))
                    offenders.Add($"{Path.GetRelativePath(Root, file)}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(offenders.Count == 0, "index scratch must come from Engine.Runtime.ScratchPool:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void SourceRules_CatchAViolation()
    {
        // The rule patterns must match what they forbid (a rule that can never match checks nothing).
        var rules = SourceRules().Select(r => ((string)r[0], new Regex((string)r[1]))).ToDictionary(r => r.Item1, r => r.Item2);
        Assert.Matches(rules["engine/Engine/Distance"], "using Engine.Index.Ivf;");
        Assert.Matches(rules["engine/Engine/Mining"], "var f = new FlatIndex(d, m);");
        Assert.Matches(rules["engine/Engine/Index"], "using var s = new FileStream(p, FileMode.Open);");
        Assert.Matches(rules["engine/Engine/Index"], "var b = File.ReadAllBytes(p);");
        foreach (var io in new[]
                 {
                     "if (File.Exists(p)) return;", "File.Delete(path);", "File.Move(a, b, overwrite: true);", "File.Copy(a, b);",
                     "using var h = File.Create(p);", "System.IO.Directory.Move(wal, aside);", "Directory.CreateDirectory(dir);",
                     "foreach (var f in Directory.GetFiles(dir)) { }", "using var w = new StreamWriter(p);", "var s = new MemoryStream();",
                     "var d = new FileDevice(path, create: false);", "new FileInfo(p).Length", "using var b = new BinaryReader(s);",
                 })
            Assert.Matches(rules["engine/Engine/Index"], io);
        Assert.DoesNotMatch(rules["engine/Engine/Index"], "var dir = Path.Combine(a, b); string name = IndexFile.Magic.ToString();");
        Assert.DoesNotMatch(rules["engine/Engine/Index"], "public string? Directory => _storage?.Location;");
    }

    /// <summary>
    /// The allow-list of index code's file-system calls is narrow: each entry names a file that still needs it, and
    /// an allowed line that also does something else is still an offence.
    /// </summary>
    [Fact]
    public void IndexFileIoAllowList_IsNarrowAndStillNeeded()
    {
        foreach (var (file, allowed) in IndexFileIoAllowed)
        {
            var lines = File.ReadAllLines(Path.Combine(Root, file)).Select(StripComment);
            Assert.Contains(lines, l => allowed.IsMatch(l));
        }
        Assert.True(AllowedIndexFileIo("engine/Engine/Index/Factory/IndexFactory.cs", "if (Directory.Exists(path) && File.Exists(meta)) return Open(path);"));
        Assert.False(AllowedIndexFileIo("engine/Engine/Index/Factory/IndexFactory.cs", "if (File.Exists(meta)) File.Delete(meta);"));
        Assert.False(AllowedIndexFileIo("engine/Engine/Index/Spann/SpannIndex.Persistence.cs", "if (File.Exists(meta)) return;"));
    }

    /// <summary>
    /// SPANN takes its storage from the caller (issue 12): no device, file or directory is made in
    /// <c>Index/Spann</c>; the path-based <c>Create</c>/<c>Open</c>/<c>Save</c> only forward to the storage-based ones
    /// with a <c>FileIndexStorage</c>.
    /// </summary>
    [Fact]
    public void Spann_TakesItsStorageFromTheCaller()
    {
        var wrapper = new Regex(@"^\s*(return\s+)?(Create|Open|Save)\(new FileIndexStorage\(\w+\)(, [\w, ]+)?\);\s*$");
        var offenders = new List<string>();
        int wrappers = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "engine", "Engine", "Index", "Spann"), "*.cs", SearchOption.AllDirectories))
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string code = StripComment(lines[i]);
                if (Regex.IsMatch(code, @"\bnew\s+(FileDevice|FileIndexStorage|FileWriteAheadLog)\b|\bFileWriteAheadLog\.(Create|Open)\b|\.(Create|Open)\(\s*\w*[Dd]ir"))
                {
                    if (wrapper.IsMatch(code)) wrappers++;
                    else offenders.Add($"{Path.GetRelativePath(Root, file)}:{i + 1}: {code.Trim()}");
                }
            }
        }
        Assert.True(offenders.Count == 0, "SPANN makes its own storage (take an IIndexStorage from the caller):\n" + string.Join("\n", offenders));
        Assert.Equal(3, wrappers); // Create(string), Open(string), Save(string)
        Assert.Matches(wrapper, "        return Open(new FileIndexStorage(directory), options);");
        Assert.DoesNotMatch(wrapper, "        var store = new FileIndexStorage(directory);");
    }

    private static readonly Regex Intrinsics = new(@"\bSystem\.Runtime\.Intrinsics\b|\bVector(64|128|256|512)\b|\b(Avx\w*|Sse\d\w*|Ssse3|Fma|AdvSimd|Bmi\d|Popcnt)\.");

    /// <summary>
    /// SIMD lives in the kernels (Distance, Quantization) and in list scanners (any <c>Scanners</c> folder under
    /// Index); index code composes them and holds no vector intrinsics of its own.
    /// </summary>
    [Fact]
    public void IndexCode_HoldsNoIntrinsicsOutsideScanners()
    {
        var offenders = new List<string>();
        string sep = Path.DirectorySeparatorChar.ToString();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "engine", "Engine", "Index"), "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{sep}obj{sep}") || file.Contains($"{sep}Scanners{sep}")) continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
                if (Intrinsics.IsMatch(StripComment(lines[i]))) offenders.Add($"{Path.GetRelativePath(Root, file)}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(offenders.Count == 0, "vector intrinsics in index code (move the loop into a scanner or a kernel):\n" + string.Join("\n", offenders));
        // In scanners, an intrinsics namespace is imported only where an intrinsic is used (no dead imports).
        var used = new Regex(@"\bVector(64|128|256|512)\b|\b(Avx\w*|Sse\d\w*|Ssse3|Fma|AdvSimd|Bmi\d|Popcnt|X86Base)\.");
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "engine", "Engine", "Index"), "*.cs", SearchOption.AllDirectories))
        {
            var code = File.ReadAllLines(file).Select(StripComment).ToArray();
            if (code.Any(l => l.TrimStart().StartsWith("using System.Runtime.Intrinsics", StringComparison.Ordinal)) && !code.Any(l => used.IsMatch(l)))
                offenders.Add($"{Path.GetRelativePath(Root, file)}: imports System.Runtime.Intrinsics but uses no intrinsic");
        }
        Assert.True(offenders.Count == 0, "dead intrinsics imports in index code:\n" + string.Join("\n", offenders));
        Assert.Matches(Intrinsics, "var v = Vector512.Load(p);");
        Assert.Matches(Intrinsics, "using System.Runtime.Intrinsics.X86;");
        Assert.Matches(Intrinsics, "acc = Avx2.Add(acc, x);");
        Assert.DoesNotMatch(Intrinsics, "int i = BitOperations.TrailingZeroCount(mask);");
    }

    /// <summary>
    /// The IVF index maps its list encoding to a codec in one place (the constructor, from the spec argument); the
    /// rest of the index asks the codec, its layout or its scanner, never <c>Spec.Encoding</c>.
    /// </summary>
    [Fact]
    public void IvfIndex_ChoosesByEncodingOnlyWhenItPicksTheCodec()
    {
        var offenders = new List<string>();
        int switches = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "engine", "Engine", "Index", "Ivf"), "*.cs", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file) == "IvfSpec.cs") continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string code = StripComment(lines[i]);
                if (Regex.IsMatch(code, @"\bSpec\.Encoding\b")) offenders.Add($"{Path.GetRelativePath(Root, file)}:{i + 1}: {code.Trim()}");
                if (Regex.IsMatch(code, @"switch\s*\(\s*spec\.Encoding\s*\)")) switches++;
            }
        }
        Assert.True(offenders.Count == 0, "IVF code branching on the list encoding outside the codec choice:\n" + string.Join("\n", offenders));
        Assert.Equal(1, switches);
    }

    private static string StripComment(string line)
    {
        int c = line.IndexOf("//", StringComparison.Ordinal);
        return c >= 0 ? line[..c] : line;
    }
}
