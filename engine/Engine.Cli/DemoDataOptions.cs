using System.CommandLine;

namespace Engine.Cli;

/// <summary>
/// The synthetic-data and model-size options the training demos share (<c>engine demo train</c>, <c>engine demo
/// refresh</c>), each with its command's default, and their checks.
/// </summary>
internal static class DemoDataOptions
{
    public static (Option<int> N, Option<int> HeldOut, Option<int> D, Option<int> Classes, Option<int> Distractors, Option<int> Hidden, Option<int> Dim)
        Create(int n, int heldOut, int d, int classes, int distractors, int hidden, int dim) => (
        new Option<int>("--n") { Description = "Training corpus size.", DefaultValueFactory = _ => n },
        new Option<int>("--held-out") { Description = "Held-out query items (evaluation).", DefaultValueFactory = _ => heldOut },
        new Option<int>("--d") { Description = "Input dimension.", DefaultValueFactory = _ => d },
        new Option<int>("--classes") { Description = "Labelled classes.", DefaultValueFactory = _ => classes },
        new Option<int>("--distractors") { Description = "Unlabelled distractor clusters.", DefaultValueFactory = _ => distractors },
        new Option<int>("--hidden") { Description = "Hidden width of the MLP.", DefaultValueFactory = _ => hidden },
        new Option<int>("--dim") { Description = "Embedding dimension.", DefaultValueFactory = _ => dim });

    /// <summary>Rejects data and model sizes the demos cannot run with, naming the option.</summary>
    public static void Check(int n, int heldOut, int d, int classes, int distractors, int hidden, int dim)
    {
        Check(n, 100, "--n");
        Check(heldOut, 1, "--held-out");
        Check(d, 2, "--d");
        Check(classes, 2, "--classes");
        Check(distractors, 1, "--distractors");
        Check(hidden, 1, "--hidden");
        Check(dim, 2, "--dim");
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="name"/> when value is below min.</summary>
    public static void Check(int value, int min, string name)
    {
        if (value < min) throw new ArgumentException($"{name} must be at least {min} (got {value}).");
    }
}
