namespace Engine.Data;

/// <summary>
/// Turns the four MNIST idx files into a <see cref="DataSet"/>: the 60,000 training images are the base vectors,
/// the 10,000 test images the queries (784 floats in 0..255, as in ann-benchmarks' mnist-784-euclidean), the
/// digit labels become <see cref="DataSet.BaseLabels"/> / <see cref="DataSet.QueryLabels"/>.
/// </summary>
public static class Mnist
{
    /// <summary>The ann-benchmarks name of this data set.</summary>
    public const string DataSetName = "mnist-784-euclidean";

    /// <summary>The four files, without the optional <c>.gz</c>.</summary>
    public static IReadOnlyList<string> FileNames { get; } =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>
    /// Reads <c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c> and
    /// <c>t10k-labels-idx1-ubyte</c> (each raw or <c>.gz</c>) from <paramref name="directory"/>. No ground truth
    /// is computed (see <see cref="GroundTruth.Compute(float[], float[], int, Metric, int, int, IProgress{int})"/>); the metric is L2.
    /// </summary>
    /// <exception cref="FileNotFoundException">A file is missing in both raw and .gz form.</exception>
    /// <exception cref="CorruptIndexException">A file is truncated or has a bad header.</exception>
    /// <exception cref="DataFormatException">Images and labels disagree in count, or labels are not one value per row.</exception>
    public static DataSet Load(string directory)
    {
        var (trainImages, trainDim) = ReadImages(Find(directory, FileNames[0]));
        byte[] trainLabels = ReadLabels(Find(directory, FileNames[1]), trainImages.Length / trainDim);
        var (testImages, testDim) = ReadImages(Find(directory, FileNames[2]));
        byte[] testLabels = ReadLabels(Find(directory, FileNames[3]), testImages.Length / testDim);
        if (trainDim != testDim)
            throw new DataFormatException(Find(directory, FileNames[2]), $"test images have {testDim} pixels but training images {trainDim}.");
        return new DataSet(DataSetName, Metric.L2, trainDim, trainImages, testImages, null, 0, trainLabels, testLabels);
    }

    private static string Find(string directory, string name)
    {
        string raw = Path.Combine(directory, name);
        if (File.Exists(raw)) return raw;
        if (File.Exists(raw + ".gz")) return raw + ".gz";
        throw new FileNotFoundException($"MNIST file '{raw}' (or '{raw}.gz') does not exist.", raw);
    }

    private static (float[] Pixels, int Dimension) ReadImages(string path)
    {
        using var reader = VectorFileReader.Open(path, VectorFileFormat.Idx);
        if (reader.Shape.Count < 2 || reader.Dimension == 0)
            throw new DataFormatException(path, $"expected images (at least 2 axes), found shape ({string.Join(", ", reader.Shape)}).");
        return (reader.ReadAllFloats().Data, reader.Dimension);
    }

    private static byte[] ReadLabels(string path, int expected)
    {
        using var reader = VectorFileReader.Open(path, VectorFileFormat.Idx);
        if (reader.Shape.Count != 1 || reader.ElementType != VectorElementType.UInt8)
            throw new DataFormatException(path, $"expected one uint8 label per row, found {reader.ElementType} of shape ({string.Join(", ", reader.Shape)}).");
        if (reader.Count != expected)
            throw new DataFormatException(path, $"holds {reader.Count} labels for {expected} images.");
        var labels = reader.ReadAllInts().Data;
        return Array.ConvertAll(labels, v => (byte)v);
    }
}
