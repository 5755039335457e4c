// A TypeDoc plugin: groups the API reference by concept (Store, Proxies, Lifetimes, ...) instead
// of by kind (Classes, Functions, Interfaces, ...), from the `conceptGroups` table in
// typedoc.json, so that no source file needs a `@group` tag and a new export lands in its
// concept's group by the file it comes from.
//
// conceptGroups: { "<group>": ["src/dir/", "src/file.ts", "ExportName", "docs/guide.md"] }
//   - a path ending in "/" takes every export declared under that folder; a path to a file,
//     every export declared in it; a bare name, that export (names win over paths);
//   - a docs/*.md path puts that guide (a projectDocuments page) in the group.
// An explicit `@group` tag in a doc comment still wins. An export or guide that matches no entry
// is a warning, and typedoc.json treats warnings as errors: place it in the table.
import { relative, sep } from 'node:path';
import { Comment, CommentTag, Converter, ParameterType, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.options.addDeclaration({
    name: 'conceptGroups',
    help: 'Group name -> source folders, files, export names or docs/*.md guides (scripts/typedoc-concepts.mjs).',
    type: ParameterType.Mixed,
    defaultValue: {},
    validate(value) {
      const ok =
        typeof value === 'object' &&
        value !== null &&
        Object.values(value).every((list) => Array.isArray(list) && list.every((s) => typeof s === 'string'));
      if (!ok) throw new Error('conceptGroups must map each group name to a list of strings');
    },
  });

  /** Where each top-level export was declared, relative to the project root (posix). */
  const declaredIn = new Map();

  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    // The entry point's exports: children of its module, which TypeDoc merges into the project.
    if (!reflection.parent?.kindOf(ReflectionKind.SomeModule | ReflectionKind.Project)) return;
    const declaration = context.getSymbolFromReflection(reflection)?.declarations?.[0];
    if (declaration) declaredIn.set(reflection, posix(declaration.getSourceFile().fileName));
  });

  // After the single entry module is merged into the project, before TypeDoc's own grouping
  // (which listens at priority -100).
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    /** @type {Record<string, string[]>} */
    const table = app.options.getValue('conceptGroups');
    const byName = new Map();
    const byPath = [];
    for (const [group, entries] of Object.entries(table)) {
      for (const entry of entries) {
        if (entry.includes('/')) byPath.push({ group, path: entry });
        else byName.set(entry, group);
      }
    }
    // Longer paths first: "src/redis/scripts.ts" wins over "src/redis/".
    byPath.sort((a, b) => b.path.length - a.path.length);
    const matchPath = (file) =>
      byPath.find(({ path }) => (path.endsWith('/') ? file.startsWith(path) : file === path))?.group;

    const project = context.project;
    for (const reflection of project.children ?? []) {
      if (reflection.comment?.getTag('@group')) continue;
      const file = declaredIn.get(reflection);
      const group = byName.get(reflection.name) ?? (file === undefined ? undefined : matchPath(file));
      if (group === undefined) {
        app.logger.warn(
          `typedoc-concepts: export ${reflection.name} (${file ?? 'unknown file'}) is in no group of conceptGroups (typedoc.json)`,
        );
        continue;
      }
      reflection.comment ??= new Comment();
      reflection.comment.blockTags.push(new CommentTag('@group', [{ kind: 'text', text: group }]));
    }
    for (const document of project.documents ?? []) {
      // A guide's title is its first heading, not its file name.
      const heading = /^#+ (.+)$/m.exec(document.content.map((part) => part.text).join(''))?.[1];
      if (heading !== undefined && !('title' in document.frontmatter)) document.name = heading.replaceAll('`', '');
      if ('group' in document.frontmatter) continue;
      const absolute = project.files.getReflectionPath(document);
      const file = absolute === undefined ? undefined : posix(absolute);
      const group = file === undefined ? undefined : matchPath(file);
      if (group === undefined) {
        app.logger.warn(`typedoc-concepts: guide ${document.name} (${file ?? 'unknown file'}) is in no group of conceptGroups (typedoc.json)`);
        continue;
      }
      document.frontmatter.group = group;
    }
  });
}

function posix(file) {
  return relative(process.cwd(), file).split(sep).join('/');
}

