// A consumer of the Minedex.Native package: P/Invokes libengine.so (the NativeAOT C ABI, engine.h) as shipped in
// runtimes/linux-x64/native. Creates a Flat index, adds three vectors, searches, and checks that a bad argument
// comes back as a non-zero status with a message naming it. Exit code 0 only if all of that holds.
using System.Runtime.InteropServices;

static unsafe class Program
{
    [DllImport("libengine")] static extern nint engine_version();
    [DllImport("libengine")] static extern nint engine_last_error();
    [DllImport("libengine")] static extern int engine_index_create(byte* spec, int d, byte* metric, nint* index);
    [DllImport("libengine")] static extern int engine_index_add(nint index, float* x, long n, int d, long* ids, long* firstId);
    [DllImport("libengine")] static extern int engine_index_search(nint index, float* q, long nq, int d, int k, float* distances, long* labels, int threads, int probes, float refine);
    [DllImport("libengine")] static extern int engine_index_free(nint index);

    static int Fail(string message) { Console.Error.WriteLine("native consumer: " + message); return 1; }

    static int Main()
    {
        string version = Marshal.PtrToStringUTF8(engine_version()) ?? "";
        if (version.Length == 0) return Fail("engine_version returned nothing");
        nint index;
        fixed (byte* spec = "Flat\0"u8, l2 = "l2\0"u8, bad = "manhattan\0"u8)
        {
            if (engine_index_create(spec, 2, bad, &index) == 0) return Fail("metric 'manhattan' was accepted");
            string error = Marshal.PtrToStringUTF8(engine_last_error()) ?? "";
            if (!error.Contains("metric", StringComparison.OrdinalIgnoreCase)) return Fail($"error does not name the metric: '{error}'");
            if (engine_index_create(spec, 2, l2, &index) != 0) return Fail("create failed: " + Marshal.PtrToStringUTF8(engine_last_error()));
        }
        float[] x = [0f, 0f, 10f, 0f, 0f, 10f];
        long[] ids = [7, 8, 9];
        float[] query = [9f, 1f];
        float distance;
        long label;
        fixed (float* px = x, pq = query)
        fixed (long* pid = ids)
        {
            if (engine_index_add(index, px, 3, 2, pid, null) != 0) return Fail("add failed");
            if (engine_index_search(index, pq, 1, 2, 1, &distance, &label, 1, 0, 0f) != 0) return Fail("search failed");
        }
        if (engine_index_free(index) != 0) return Fail("free failed");
        if (label != 8 || Math.Abs(distance - 2f) > 1e-4f) return Fail($"nearest of (9,1) should be id 8 at squared L2 2, got {label} at {distance}");
        Console.WriteLine($"native consumer: libengine {version} from Minedex.Native ok (nearest id {label}, distance {distance})");
        return 0;
    }
}
