# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_freshd_global_optspecs
    string join \n config= log-level= h/help V/version
end

function __fish_freshd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_freshd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_freshd_using_subcommand
    set -l cmd (__fish_freshd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c freshd -n "__fish_freshd_needs_command" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_needs_command" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_needs_command" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_needs_command" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "run" -d 'Run the daemon in the foreground (what systemd\'s ExecStart= runs)'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "check" -d 'Check the config; print accounts, jobs and each job\'s next 3 runs'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "login" -d 'Authorize freshd in a browser (code + PKCE) and store the refresh token'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "import-token" -d 'Read a refresh token from standard input and store it'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "token" -d 'Print a valid access token, asked of the running daemon'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "status" -d 'Show accounts and jobs of the running daemon; exit 3 when an account needs a person'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "run-job" -d 'Run one job now in the running daemon; the exit code says how it went'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "reload" -d 'Reload the config of the running daemon (as SIGHUP does)'
complete -c freshd -n "__fish_freshd_needs_command" -f -a "demo" -d 'Run the daemon against a built-in simulated provider'
complete -c freshd -n "__fish_freshd_using_subcommand run" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand run" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand run" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand run" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand check" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand check" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand check" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand check" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand login" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand login" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand login" -l no-browser -d 'Print the URL instead of opening a browser'
complete -c freshd -n "__fish_freshd_using_subcommand login" -l paste -d 'Paste the redirected URL instead of listening for it (headless machines)'
complete -c freshd -n "__fish_freshd_using_subcommand login" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand login" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand import-token" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand import-token" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand import-token" -l check -d 'Refresh once with it first, and store only if the provider accepts it'
complete -c freshd -n "__fish_freshd_using_subcommand import-token" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand import-token" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand token" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand token" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand token" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand token" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand status" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand status" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand status" -l json -d 'One JSON object {"accounts":[…],"jobs":[…],"daemon":{…}}; later versions only add fields'
complete -c freshd -n "__fish_freshd_using_subcommand status" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand status" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand run-job" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand run-job" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand run-job" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand run-job" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand reload" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand reload" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand reload" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand reload" -s V -l version -d 'Print version'
complete -c freshd -n "__fish_freshd_using_subcommand demo" -l for -d 'Stop after this long, e.g. 30s [default: until Ctrl-C]' -r
complete -c freshd -n "__fish_freshd_using_subcommand demo" -l config -d 'The config file [default: $FRESHD_CONFIG, else $XDG_CONFIG_HOME/freshd/config.toml, else /etc/freshd/config.toml]' -r -F
complete -c freshd -n "__fish_freshd_using_subcommand demo" -l log-level -d 'error, warn, info, debug or trace [default: info for `run` and `demo`, warn otherwise]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c freshd -n "__fish_freshd_using_subcommand demo" -s h -l help -d 'Print help'
complete -c freshd -n "__fish_freshd_using_subcommand demo" -s V -l version -d 'Print version'
