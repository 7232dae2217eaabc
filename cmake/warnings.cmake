# Warnings for our own targets (third-party headers come in as SYSTEM).
add_compile_options(
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wimplicit-fallthrough -Werror=unused-result
  # Designated initializers that leave members at their defaults are how
  # options structs are meant to be used; g++ 12 warns about them anyway.
  -Wno-missing-field-initializers)
if(SPIRIT_WERROR)
  add_compile_options(-Werror)
endif()
# msgpack-c would otherwise pull Boost headers into every translation unit.
add_compile_definitions(MSGPACK_NO_BOOST)
