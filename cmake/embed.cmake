# embed.cmake - turns a file into a C byte array, so that the binary carries it.
# Run as: cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -P embed.cmake
# Defines `const unsigned char NAME[]` and `const size_t NAME_len` (no NUL is added).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x..," 16 row) # CMake's regular expressions have no {n}
string(REGEX REPLACE "(${row})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}"
     "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
     "#include <stddef.h>\n"
     "extern const unsigned char ${NAME}[];\n"
     "extern const size_t ${NAME}_len;\n"
     "const unsigned char ${NAME}[] = {\n${bytes}};\n"
     "const size_t ${NAME}_len = ${len};\n")
