// The `equinas` command-line tool; see README.md beside this file.
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Spectre assumes 80 columns when the output is a file or a pipe; tables of long paths read better unwrapped.
    AnsiConsole.Profile.Width = 200;
}

// Ctrl+C cancels training, which stops within a batch (every worker of the evolutionary search) and then says how to
// continue from the checkpoint: allow that more than System.CommandLine's default 2 s under load.
var invocation = new System.CommandLine.InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
return await Equinas.Cli.Cli.Build().Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
