// completion bash|zsh: scripts generated from the command tree, so they never
// fall behind the commands.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';

interface Node {
  path: string;
  words: { name: string; description: string }[];
}

function tree(cmd: Command, path: string[] = []): Node[] {
  const words = [
    ...cmd.commands.map((c) => ({ name: c.name(), description: c.description() })),
    ...cmd.options.map((o) => ({ name: o.long ?? o.short ?? '', description: o.description })),
    { name: '--help', description: 'print help' },
  ].filter((w) => w.name);
  return [{ path: path.join(' '), words }, ...cmd.commands.flatMap((c) => tree(c, [...path, c.name()]))];
}

function bash(nodes: Node[]): string {
  const cases = nodes.map((n) => `    "${n.path}") words="${n.words.map((w) => w.name).join(' ')}" ;;`).join('\n');
  return `# posfleet completion for bash: eval "$(posfleet completion bash)" (e.g. in ~/.bashrc)
_posfleet() {
  local cur cmdpath="" i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) _posfleet_known "\${cmdpath:+$cmdpath }\${COMP_WORDS[i]}" && cmdpath="\${cmdpath:+$cmdpath }\${COMP_WORDS[i]}" ;; esac
  done
  case "$cmdpath" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
_posfleet_known() {
  case "$1" in
${nodes.map((n) => `    "${n.path}") return 0 ;;`).join('\n')}
  esac
  return 1
}
complete -o filenames -F _posfleet posfleet
`;
}

function zsh(nodes: Node[]): string {
  const esc = (s: string) => s.replace(/'/g, "'\\''").replace(/:/g, '\\:');
  const cases = nodes
    .map((n) => `    '${n.path}') words=(${n.words.map((w) => `'${esc(w.name)}:${esc(w.description)}'`).join(' ')}) ;;`)
    .join('\n');
  return `#compdef posfleet
# posfleet completion for zsh: posfleet completion zsh > "\${fpath[1]}/_posfleet" (or eval it in ~/.zshrc)
_posfleet() {
  local cmdpath="" w i
  local -a known candidates
  known=(${nodes.map((n) => `'${n.path}'`).join(' ')})
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    [[ $w == -* ]] && continue
    if (( \${known[(Ie)\${cmdpath:+$cmdpath }$w]} )); then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  case "$cmdpath" in
${cases.replace(/words=/g, 'candidates=')}
  esac
  if (( \${#candidates} )); then _describe 'posfleet' candidates; else _files; fi
}
compdef _posfleet posfleet
`;
}

export function registerCompletion(program: Command, ctx: Ctx): void {
  program
    .command('completion')
    .description('print a shell completion script: bash or zsh')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', '\n  bash: eval "$(posfleet completion bash)"\n  zsh:  eval "$(posfleet completion zsh)"')
    .action(async (shell: string, ...rest: unknown[]) => {
      commandOf(rest);
      const nodes = tree(program);
      if (shell === 'bash') ctx.io.stdout.write(bash(nodes));
      else if (shell === 'zsh') ctx.io.stdout.write(zsh(nodes));
      else throw new CliError(EXIT.usage, `no completion for "${shell}": bash or zsh`);
    });
}
