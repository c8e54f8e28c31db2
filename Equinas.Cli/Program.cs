// The `equinas` command-line tool; see README.md beside this file.
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Spectre assumes 80 columns when the output is a file or a pipe; tables of long paths read better unwrapped.
    AnsiConsole.Profile.Width = 200;
}

return await Equinas.Cli.Cli.Build().Parse(args).InvokeAsync().ConfigureAwait(false);
