using System.Collections.Concurrent;

namespace Engine.Distributed;

/// <summary>
/// Dedicated threads for work that blocks on I/O: FASTER's log commits spin until the device's completions (which run
/// on the thread pool) arrive, and opening a store recovers synchronously. Run on Orleans' turns (thread-pool threads),
/// a few such calls at once starve the pool of the very threads their completions need, and every call stalls for
/// seconds; here they block only these threads. Work started here does not see this scheduler as current
/// (<see cref="TaskCreationOptions.HideScheduler"/>): the parallel loops inside an index add or a training run use the
/// thread pool, not these few threads.
/// </summary>
internal static class BlockingWork
{
    private static readonly DedicatedScheduler Scheduler = new(Math.Clamp(Environment.ProcessorCount, 2, 8), "engine-blocking-");

    /// <summary>Dedicated threads (one per core, at least 2) for record reads (<c>CollectionOptions.ReadScheduler</c>):
    /// a read of a payload FASTER paged to disk waits on a completion that runs on the thread pool.</summary>
    public static TaskScheduler Reads { get; } = new DedicatedScheduler(Math.Max(2, Environment.ProcessorCount), "engine-reads-");

    /// <summary>Runs <paramref name="work"/> (and the synchronous part of the task it returns) on a dedicated thread.</summary>
    public static Task<T> Run<T>(Func<Task<T>> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, Scheduler).Unwrap();

    /// <summary>Runs <paramref name="work"/> (and the synchronous part of the task it returns) on a dedicated thread.</summary>
    public static Task Run(Func<Task> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, Scheduler).Unwrap();

    /// <summary>Runs the synchronous <paramref name="work"/> on a dedicated thread.</summary>
    public static Task<T> Run<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler, Scheduler);

    private sealed class DedicatedScheduler : TaskScheduler
    {
        private readonly BlockingCollection<Task> _queue = [];

        private readonly string _prefix;

        public DedicatedScheduler(int threads, string prefix)
        {
            _prefix = prefix;
            for (int i = 0; i < threads; i++)
                new Thread(() =>
                {
                    foreach (var task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
                }) { IsBackground = true, Name = prefix + i }.Start();
        }

        public override int MaximumConcurrencyLevel => int.MaxValue;

        protected override void QueueTask(Task task) => _queue.Add(task);

        // Inline only on our own threads (never on an Orleans turn).
        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
            Thread.CurrentThread.Name?.StartsWith(_prefix, StringComparison.Ordinal) == true && TryExecuteTask(task);

        protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();
    }
}
