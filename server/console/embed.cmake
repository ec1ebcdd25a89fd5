# Writes the console page into a C++ source as a raw string (cmake -P, at build time).
# -DIN=index.html -DOUT=console_asset.cc
file(READ "${IN}" html)
string(FIND "${html}" ")ganserve_console\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )ganserve_console\"")
endif()
file(WRITE "${OUT}" "// Generated from server/console/index.html by server/console/embed.cmake.\n"
  "#include \"server/console.h\"\n\nnamespace ganserve::server {\n\n"
  "const std::string& ConsoleHtml() {\n  static const std::string kHtml = R\"ganserve_console(${html})ganserve_console\";\n"
  "  return kHtml;\n}\n\n}  // namespace ganserve::server\n")
