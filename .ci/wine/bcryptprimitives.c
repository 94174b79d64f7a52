/* ProcessPrng for Wine prefixes whose Wine lacks bcryptprimitives.dll (Debian 12's Wine 8.0).
 * Rust's standard library on Windows (1.78 and later) imports ProcessPrng from this DLL; without
 * it no Rust program starts under that Wine. Built by .ci/wine-prefix with mingw-w64 and copied
 * into the CI's Wine prefix only; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
