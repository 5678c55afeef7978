# Sourced by nginx's auto/make: build the C++ core before linking the module.

cat << END                                                    >> $NGX_MAKEFILE

$NGX_OBJS${ngx_dirsep}ngx_http_oauth2_module$ngx_modext: $OAUTH2_CORE_LIB

$OAUTH2_CORE_LIB: oauth2_core_always
	\$(MAKE) -C $ngx_addon_dir core BUILD=$OAUTH2_BUILD

oauth2_core_always:

.PHONY: oauth2_core_always

END
