using Xunit.Abstractions;

namespace Equinas.Cli.Tests;

/// <summary>Runs the <c>equinas</c> tool in this process with its console output captured and written to the test log.</summary>
internal static class CliInProcess
{
    /// <summary>The exit code of <c>equinas <paramref name="args"/></c> and what it printed.</summary>
    public static (int Code, string Output) Run(ITestOutputHelper log, params string[] args)
    {
        var writer = new StringWriter();
        var original = Console.Out;
        Console.SetOut(writer);
        try
        {
            int code = Cli.Build().Parse(args).Invoke();
            string printed = writer.ToString();
            log.WriteLine($"equinas {string.Join(' ', args)} -> {code}");
            log.WriteLine(printed);
            return (code, printed);
        }
        finally
        {
            Console.SetOut(original);
        }
    }
}
