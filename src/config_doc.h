/* config_doc.h: documents generated from the option table at build time,
 * so they cannot drift from the parser: the man page anypush(8) and the
 * example configuration file. */
#ifndef ANYPUSH_CONFIG_DOC_H
#define ANYPUSH_CONFIG_DOC_H

#include <stdio.h>

/* anypush.8 in roff (man(7) macros); its date is SOURCE_DATE_EPOCH when
 * set, so package builds are reproducible. */
void config_doc_man(FILE *out);
/* anypush.conf.example: every option commented out at its default. */
void config_doc_example(FILE *out);

#endif
